"""Where a size-gated layer sits: who reads its output, and its twins."""

import keras

from keras_andhra.compat import functional_graph
from keras_andhra.layers import BranchBlock
from keras_andhra.layers import activation_kinds
from keras_andhra.layers.size_gate import SizeGatedLayer

# Layers that act on each channel alone and map a zero channel to zero, so
# that new units (which output 0) stay 0 up to the reading layer. Fresh
# BatchNormalization channels (mean 0, variance 1, shift 0) map 0 to 0.
_PASS_THROUGH = (
    keras.layers.BatchNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.Identity,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.ZeroPadding2D,
)
_MIXING = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    SizeGatedLayer,
)


class Site:
    """A gated layer where it sits: its container and its readers.

    Attributes:
        layer: The size-gated layer.
        key: A stable name for logs: the layer's name, after the names of
            the nested models it sits in (`"stage2_copy0_hidden"`).
        followers: `(layer, input_shape)` of every layer to rebuild when
            the gated layer widens, in order: the per-channel layers, then
            the layer that mixes channels.
        error: Why the layer cannot be widened, or `None`.
    """

    def __init__(self, layer, followers, error):
        self.layer = layer
        # The caller that knows the nested models puts their names first.
        self.key = layer.name
        self.followers = followers
        if layer.method == "controller":
            error = (
                "in controller mode the size is a fraction of the capacity, "
                "so a new capacity would change what the layer computes"
            )
        self.error = error


def gated_sites(model):
    """Every size-gated layer in `model`, grouped across branch copies.

    Returns:
        A list of groups; each group is a list of `Site`s that widen
        together (one per `BranchBlock` copy, or a single site).
    """
    groups = []
    _collect(model, groups)
    return groups


def _collect(container, groups, prefix=""):
    if isinstance(container, keras.Sequential):
        layers = list(container.layers)
        shapes = _sequential_shapes(container)
        for index, layer in enumerate(layers):
            if isinstance(layer, SizeGatedLayer):
                site = _sequential_site(layers, shapes, index)
                site.key = prefix + site.key
                groups.append([site])
            else:
                _descend(layer, groups, prefix)
        return
    if functional_graph.is_functional(container):
        readers = _graph_readers(container)
        for layer in container.layers:
            if isinstance(layer, SizeGatedLayer):
                site = _graph_site(layer, readers)
                site.key = prefix + site.key
                groups.append([site])
            else:
                _descend(layer, groups, prefix)
        return
    _descend(container, groups, prefix)


def _descend(layer, groups, prefix):
    if isinstance(layer, BranchBlock):
        # The same position in every copy: one group per position.
        per_copy = []
        for copy in layer.copies:
            found = []
            if isinstance(copy, SizeGatedLayer):
                site = Site(
                    copy,
                    [],
                    f"its output leaves the branch block {layer.name!r}",
                )
                site.key = prefix + site.key
                found.append(site)
            else:
                _collect(copy, found, f"{prefix}{copy.name}_")
                found = [site for group in found for site in group]
            per_copy.append(found)
        for sites in zip(*per_copy):
            groups.append(list(sites))
    elif isinstance(layer, keras.Model):
        _collect(layer, groups, f"{prefix}{layer.name}_")


def _sequential_shapes(container):
    """The input shape of every layer of a built Sequential."""
    inputs = getattr(container, "inputs", None)
    if not inputs:
        return [None] * len(container.layers)
    x = keras.KerasTensor(inputs[0].shape, inputs[0].dtype)
    shapes = []
    for layer in container.layers:
        shapes.append(tuple(x.shape))
        x = layer.compute_output_spec(x)
    return shapes


def _sequential_site(layers, shapes, index):
    followers = []
    for layer, shape in zip(layers[index + 1 :], shapes[index + 1 :]):
        if isinstance(layer, _MIXING):
            followers.append((layer, shape))
            return Site(layers[index], followers, None)
        if _passes_zero(layer):
            followers.append((layer, shape))
            continue
        return Site(layers[index], followers, _unsupported(layer))
    return Site(
        layers[index],
        followers,
        "its output leaves the Sequential block it is in; end the block "
        "with a Dense or convolution that reads it",
    )


def _graph_readers(model):
    """`{id(layer): [(reader, input_shape), ...]}` of a functional model."""
    readers = {}
    produced_by = {}

    def operation_fn(op):
        def call(*args, **kwargs):
            flat = [
                x
                for x in keras.tree.flatten((args, kwargs))
                if isinstance(x, keras.KerasTensor)
            ]
            for x in flat:
                producer = produced_by.get(id(x))
                if producer is not None:
                    readers.setdefault(id(producer), []).append(
                        (op, tuple(x.shape))
                    )
            outputs = op.compute_output_spec(*args, **kwargs)
            for y in keras.tree.flatten(outputs):
                produced_by[id(y)] = op
            return outputs

        return call

    inputs = [keras.KerasTensor(t.shape, t.dtype) for t in model.inputs]
    outputs = functional_graph.run_graph(
        model, inputs if len(inputs) > 1 else inputs[0], operation_fn
    )
    for y in keras.tree.flatten(outputs):
        producer = produced_by.get(id(y))
        if producer is not None:
            readers.setdefault(id(producer), []).append((None, None))
    return readers


def _graph_site(layer, readers):
    followers = []
    current = layer
    while True:
        found = readers.get(id(current), [])
        if len(found) != 1:
            return Site(
                layer,
                followers,
                "its output is read by "
                + (f"{len(found)} layers" if found else "no layer")
                + "; widening follows one chain of readers",
            )
        reader, shape = found[0]
        if reader is None:
            return Site(layer, followers, "its output is the model's output")
        if isinstance(reader, _MIXING):
            followers.append((reader, shape))
            return Site(layer, followers, None)
        if _passes_zero(reader):
            followers.append((reader, shape))
            current = reader
            continue
        return Site(layer, followers, _unsupported(reader))


def _passes_zero(layer):
    """Whether `layer` can stand between a gated layer and its reader."""
    if not isinstance(layer, _PASS_THROUGH):
        return False
    if isinstance(layer, keras.layers.Activation):
        name = activation_kinds.name(layer.activation)
        return name in activation_kinds.ZERO_PRESERVING
    if isinstance(layer, keras.layers.ReLU):
        return not (layer.threshold and layer.negative_slope)
    return True


def _unsupported(layer):
    return (
        f"its output feeds {layer.name!r} ({type(layer).__name__}), which "
        "growth cannot widen; between a gated layer and the next Dense, "
        "convolution or gated layer only per-channel layers that keep a "
        "zero channel zero (normalisation, ReLU-family and tanh "
        "activations, pooling, dropout) can stand"
    )


def group_of(model, layer):
    """The group of sites `layer` (a gated layer or its name) widens with."""
    groups = gated_sites(model)
    for group in groups:
        for site in group:
            if site.layer is layer or site.layer.name == layer:
                return group
    name = layer if isinstance(layer, str) else getattr(layer, "name", layer)
    gated = sorted({site.layer.name for group in groups for site in group})
    raise ValueError(
        f"{name!r} is not a size-gated layer of this model, so it cannot "
        "grow; growth works on SizeGatedDense and SizeGatedConv2D layers. "
        f"The model's gated layers are: {gated or 'none'}."
    )
