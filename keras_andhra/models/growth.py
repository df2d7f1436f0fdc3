"""Growing and pruning size-gated layers inside a model.

A size-gated layer's output feeds other layers. Widening it means wider
variables for it and more input channels for what reads it: per-channel
layers (normalisation, activations, pooling, dropout) pass the new
channels on, and the first layer that mixes channels (`Dense`, `Conv*D`,
another gated layer) takes them as new input rows. New units enter with
gate 0, so they output exactly 0 and the network computes what it did.
A gated layer inside a `BranchBlock` copy is widened in every copy at
once, so the copies keep one architecture.
"""

import time
import warnings

import keras
import numpy as np

from keras_andhra import backend
from keras_andhra.layers import BranchBlock
from keras_andhra.layers import activation_kinds
from keras_andhra.layers import functional_graph
from keras_andhra.layers import resize
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
        if layer.mode == "controller":
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


def widen(model, group, capacity):
    """Widens every site of `group` to `capacity` units, in place.

    The model's optimizer must be built. Returns the seconds it took.
    """
    start = time.perf_counter()
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.built:
        raise ValueError(
            "Widening carries the optimizer's state over, so the model's "
            "optimizer must be built: compile the model and train it (or "
            "call `model.optimizer.build(model.trainable_variables)`) "
            "first."
        )
    for site in group:
        if site.error is not None:
            raise ValueError(f"Cannot widen {site.layer.name!r}: {site.error}.")
        if capacity <= site.layer.capacity:
            raise ValueError(
                f"Widening needs a capacity above the current "
                f"{site.layer.capacity}. Received: capacity={capacity}"
            )
    for site in group:
        _resize_site(site, capacity)
    backend.refresh_parameters(model)
    _rebuild_optimizer(model, optimizer)
    _rebuild_functions(model)
    return time.perf_counter() - start


def _resize_site(site, capacity):
    layer = site.layer
    # The gate reads min(size, capacity): a size past the capacity would
    # open the new units at once. Clip it, which changes nothing now.
    size = float(keras.ops.convert_to_numpy(layer.size))
    if size > min(layer.capacity, capacity):
        layer.size.assign(float(min(layer.capacity, capacity)))
    shape = _input_shape(layer)

    def set_capacity(target):
        target.capacity = capacity

    resize.rebuild(layer, shape, set_capacity)
    for follower, follower_shape in site.followers:
        if follower.weights:
            new_shape = tuple(follower_shape[:-1]) + (capacity,)
            resize.rebuild(follower, new_shape)


def _input_shape(layer):
    # Only the last axis matters to the gated layers' build; it does not
    # change when the layer widens.
    kernel = layer.kernel
    features = kernel.shape[-2] - int(layer.feed_size)
    return (None,) * (len(kernel.shape) - 1) + (features,)


def _rebuild_optimizer(model, optimizer):
    """A new optimizer for the new variables, with the old one's state.

    Old values are matched by variable path and copied into the leading
    slice: old units keep their state, new units start where the optimizer
    starts every variable (zero moments for SGD and Adam), the iteration
    count goes on.
    """
    values = {
        v.path: keras.ops.convert_to_numpy(v) for v in optimizer.variables
    }
    exclusions = resize.weight_decay_exclusions(optimizer)
    new = optimizer.__class__.from_config(optimizer.get_config())
    variables = model.trainable_variables
    resize.exclude_weight_decay(new, variables, *exclusions)
    new.build(variables)
    # With `use_ema`, the averages of new units start at the units' values,
    # as Keras starts every average at its first step.
    averages = resize.moving_averages(new, variables)
    for variable in new.variables:
        if variable.path in values:
            # Beyond the old extent the new slots keep the optimizer's own
            # initial values (0 for moments, Adagrad's and Ftrl's starting
            # accumulators, ...).
            base = averages.get(id(variable), variable)
            variable.assign(resize.fit_into(values[variable.path], base))
    model.optimizer = new


def _rebuild_functions(model):
    # Compiled steps captured the old variables (TensorFlow) or shapes.
    for make in (
        "make_train_function",
        "make_test_function",
        "make_predict_function",
    ):
        getattr(model, make)(force=True)


def widen_layer(model, layer, capacity):
    """Widens a size-gated layer of a model in place, keeping its function.

    The layer gets `capacity` units (the old weights copied, new units
    initialised by the layer's initializers and switched off by the gate),
    the layers reading its output get the matching input channels, the
    optimizer's state is carried over (old units' moments kept, new ones
    zero, the iteration count kept) and the model's train, test and
    predict functions are rebuilt. A layer inside a `BranchBlock` copy is
    widened in every copy. `keras_andhra.callbacks.DynamicGrowth` calls
    this during `fit`.

    Args:
        model: A compiled model whose optimizer is built (it has trained,
            or `model.optimizer.build(model.trainable_variables)`).
        layer: A `SizeGatedDense`/`SizeGatedConv2D` of the model, or its
            name.
        capacity: The new number of units, above the current one.

    Returns:
        The seconds the widening took.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_andhra as ka

    model = keras.Sequential([
        keras.Input((3,)),
        ka.layers.SizeGatedDense(4, activation="tanh", size=2.0,
                                 name="hidden"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.rand(8, 3).astype("float32")
    model.fit(x, np.zeros((8, 1)), epochs=1, verbose=0)
    before = model.predict(x, verbose=0)
    ka.models.widen_layer(model, "hidden", 8)
    np.abs(model.predict(x, verbose=0) - before).max()  # 0.0
    ```
    """
    group = _group_of(model, layer)
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(
            f"`capacity` must be an int. Received: capacity={capacity!r}"
        )
    return widen(model, group, capacity)


def prune_to_active(model):
    """A copy of `model` cut to the active units of its size-gated layers.

    Every gated layer keeps only the units whose gate is not 0 (the most
    active units over the copies of a branch block), and the layers
    reading it keep the matching input channels, so the copy computes the
    same outputs with fewer parameters: the network to deploy after
    growing. The copy is not compiled. Layers that cannot be resized (see
    `widen_layer`) keep their capacity, with a warning.

    Args:
        model: A model with size-gated layers (Sequential or functional).

    Returns:
        A new model of the same class.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_andhra as ka

    model = keras.Sequential([
        keras.Input((3,)),
        ka.layers.SizeGatedDense(9, activation="tanh", size=4.5),
        keras.layers.Dense(1),
    ])
    small = ka.models.prune_to_active(model)
    small.layers[0].max_units  # 5
    x = np.random.rand(4, 3).astype("float32")
    np.abs(small.predict(x, verbose=0) - model.predict(x, verbose=0)).max()
    ```
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`prune_to_active` takes a Keras model. Received: "
            f"{type(model).__name__}"
        )
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    for group in gated_sites(copy):
        active = max(max(site.layer.active_units, 1) for site in group)
        if active >= group[0].layer.capacity:
            continue
        blocked = [site for site in group if site.error is not None]
        if blocked:
            warnings.warn(
                f"prune_to_active: {blocked[0].layer.name!r} keeps its "
                f"{blocked[0].layer.capacity} units: {blocked[0].error}.",
                stacklevel=2,
            )
            continue
        folds = [_fold(site, active) for site in group]
        unfoldable = [site for site, fold in zip(group, folds) if fold is None]
        if unfoldable:
            warnings.warn(
                f"prune_to_active: {unfoldable[0].layer.name!r} keeps its "
                f"{unfoldable[0].layer.capacity} units: between it and "
                f"{unfoldable[0].followers[-1][0].name!r} its switched-off "
                "units become a non-zero constant (a normalisation's "
                "shift), which only a Dense reader can absorb exactly.",
                stacklevel=2,
            )
            continue
        for site, fold in zip(group, folds):
            fold()
            _resize_site(site, active)
    backend.refresh_parameters(copy)
    return copy


def _fold(site, active):
    """Folds what the units from `active` on still send into the reader.

    A switched-off unit outputs 0, but a normalisation after it can turn
    that 0 into a constant (its shift). Before those units are cut, their
    constant's contribution moves into the reading Dense's bias. Returns
    the function that does it, or None where it cannot be done exactly (a
    convolution reads them: its zero padding breaks the constant).
    """
    capacity = site.layer.capacity
    shape = site.followers[0][1] if site.followers else (None, capacity)
    x = np.zeros((1,) + tuple(d or 1 for d in shape[1:-1]) + (capacity,))
    x = keras.ops.convert_to_tensor(x.astype("float32"))
    for follower, _ in site.followers[:-1]:
        x = follower(x, training=False)
    constants = keras.ops.convert_to_numpy(x).reshape(-1, capacity)[0]
    constants = constants[active:]
    if not np.any(constants):
        return lambda: None
    reader = site.followers[-1][0]
    if not isinstance(reader, (keras.layers.Dense, SizeGatedLayer)) or (
        isinstance(reader, SizeGatedLayer) and len(reader.kernel.shape) != 2
    ):
        return None
    kernel = keras.ops.convert_to_numpy(reader.kernel)
    first = int(getattr(reader, "feed_size", False)) + active
    shift = constants @ kernel[first : first + len(constants)]

    def apply():
        reader.bias.assign(keras.ops.convert_to_numpy(reader.bias) + shift)

    return apply


def _group_of(model, layer):
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
