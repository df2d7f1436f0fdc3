"""The layers on one head's path through a branched network.

Every head of an ANDHRA network is an ordinary network: the trunk, then at
each split that branch's own activation, then at each `BranchBlock` that
branch's own copy. `walk_head` runs a model's graph from new inputs down
to one head and calls `visit(layer, args, kwargs)` for every standard
Keras layer on that path, in order: splits become their branch's
activation layer, blocks their branch's copy, and nested `Sequential` and
functional models are walked layer by layer. Branch outputs are resolved
only when the head needs them, so the other heads' copies are never
visited.
"""

import math
import weakref

import keras

from keras_andhra.compat import functional_graph
from keras_andhra.layers import AndhraSplit
from keras_andhra.layers import BranchBlock
from keras_andhra.layers import HeadCollector
from keras_andhra.layers import branch_paths
from keras_andhra.utils import heads


def collector_of(model):
    """The `HeadCollector` whose output is `model`'s output."""
    collectors = [
        layer for layer in model.layers if isinstance(layer, HeadCollector)
    ]
    if not collectors:
        raise ValueError(
            "This needs an ANDHRA model: a functional model whose output "
            "comes from a `keras_andhra.layers.HeadCollector`, such as "
            f"`keras_andhra.models.abnet(...)`. Received: model={model.name!r}"
        )
    collector = collectors[-1]
    if len(model.outputs) != 1 or model.outputs[0] is not collector.output:
        raise ValueError(
            "The model's output must be its `HeadCollector`'s output, so "
            "that every head is one branch path; move layers that follow "
            f"the collector into the branches. Received: model={model.name!r}"
        )
    return collector


def head_names_of(model):
    """The head names of an ANDHRA model, checked to be two or more."""
    names = collector_of(model).head_names
    if len(names) < 2:
        raise ValueError(
            "Ranking and ensembling heads needs a model with two heads or "
            f"more; {model.name!r} has one ({names[0]!r}), which is an "
            "ordinary model: evaluate it with `model.evaluate`."
        )
    return names


def head_index(model, head):
    """The position of `head` (a name from `model.head_names` or an index)."""
    return heads.head_index(head, collector_of(model).head_names)


class _Branch:
    """A branch output of a split or a block, resolved only if needed."""

    __slots__ = ("make_layer", "source", "value")

    def __init__(self, make_layer, source):
        self.make_layer = make_layer
        self.source = source
        self.value = None


def walk_head(model, head, inputs, visit):
    """Runs the path of one head on `inputs`, calling `visit` per layer.

    Args:
        model: An ANDHRA model (output from a `HeadCollector`).
        head: A head name or index.
        inputs: Values for the model's inputs (a list, in model order).
        visit: `visit(layer, args, kwargs)` runs one standard layer on the
            path and returns its outputs.

    Returns:
        The head's output, as `visit` computed it.
    """
    index = head_index(model, head)
    leaves, _ = branch_paths.as_branch_list(collector_of(model).input)
    path_model = keras.Model(model.inputs, leaves[index])

    def resolve(value):
        if isinstance(value, _Branch):
            if value.value is None:
                source = resolve(value.source)
                value.value = run(value.make_layer(), (source,), {})
            return value.value
        return value

    def run(layer, args, kwargs):
        if isinstance(layer, (AndhraSplit, BranchBlock, HeadCollector)):
            raise ValueError(
                "Heads can be walked only when every split and branch block "
                "is at the top level of the model, not nested inside "
                f"another block. Found {layer.name!r} nested."
            )
        if isinstance(layer, keras.Sequential):
            x = args[0]
            for inner in layer.layers:
                x = run(inner, (x,), {})
            return x
        if functional_graph.is_functional(layer):
            return functional_graph.run_graph(
                layer, args[0], lambda op: _runner(op, run)
            )
        return visit(layer, args, kwargs)

    def operation_fn(op):
        if isinstance(op, AndhraSplit):
            return lambda inputs, *a, **k: _split_branches(op, inputs)
        if isinstance(op, BranchBlock):
            return lambda inputs, *a, **k: _block_branches(op, inputs)

        def call(*args, **kwargs):
            args = keras.tree.map_structure(resolve, args)
            kwargs = keras.tree.map_structure(resolve, kwargs)
            return run(op, args, kwargs)

        return call

    inputs = list(inputs)
    return resolve(functional_graph.run_graph(path_model, inputs, operation_fn))


def _runner(op, run):
    return lambda *args, **kwargs: run(op, args, kwargs)


def _split_branches(split, inputs):
    tensors, _ = branch_paths.as_branch_list(inputs)
    return [
        _Branch(_split_layer_fn(split, i, j), tensor)
        for i, tensor in enumerate(tensors)
        for j in range(split.num_branches)
    ]


def _split_layer_fn(split, i, j):
    def make_layer():
        if split.activation == "prelu":
            return split.prelus[i * split.num_branches + j]
        if split.activation is None:
            return keras.layers.Identity(name=split.name)
        return keras.layers.Activation(split.activation, name=split.name)

    return make_layer


def _block_branches(block, inputs):
    tensors, was_list = branch_paths.as_branch_list(inputs)
    outputs = [
        _Branch(lambda copy=copy: copy, tensor)
        for copy, tensor in zip(block.copies, tensors)
    ]
    return outputs if was_list else outputs[0]


_COST_CACHE = weakref.WeakKeyDictionary()


def head_layers(model, head):
    """The standard layers whose output reaches one head, in path order.

    Splits appear as their branch's activation layer (its `PReLU` for
    `activation="prelu"`), blocks as their branch's copy, unrolled.
    """
    index = head_index(model, head)
    inputs = [keras.KerasTensor(t.shape, t.dtype) for t in model.inputs]
    used = _used_layers(lambda visit: walk_head(model, index, inputs, visit))
    return [layer for layer, _ in used.values()]


def head_cost(model, head):
    """`(parameters, flops)` of one head's path, cached per model shape.

    Parameters count every weight on the path (trainable or not), as
    `count_params` does. FLOPs are per example, forward, two per
    multiply-add of the convolutions and dense layers.
    """
    index = head_index(model, head)
    costs = _cached_costs(model)
    if index not in costs:
        inputs = [keras.KerasTensor(t.shape, t.dtype) for t in model.inputs]
        costs[index] = _walk_cost(
            lambda visit: walk_head(model, index, inputs, visit)
        )
    return costs[index]


def model_cost(model):
    """`(parameters, flops)` of a plain functional or Sequential model."""
    costs = _cached_costs(model)
    if "model" in costs:
        return costs["model"]
    inputs = [keras.KerasTensor(t.shape, t.dtype) for t in model.inputs]

    def walk(visit):
        if isinstance(model, keras.Sequential):
            x = inputs[0]
            for layer in model.layers:
                x = visit(layer, (x,), {})
            return x
        return functional_graph.run_graph(
            model, inputs, lambda op: _runner(op, visit)
        )

    costs["model"] = _walk_cost(walk)
    return costs["model"]


def _cached_costs(model):
    """The model's cost cache, emptied when its weights changed shape.

    Growth (`DynamicGrowth`, `widen_layer`) resizes a model in place.
    """
    shapes = tuple(tuple(w.shape) for w in model.weights)
    cached = _COST_CACHE.get(model)
    if cached is None or cached[0] != shapes:
        cached = _COST_CACHE[model] = (shapes, {})
    return cached[1]


def _walk_cost(walk):
    """Runs `walk(visit)` on shapes; sums the cost of what reaches the end."""
    used = _used_layers(walk)
    parameters = sum(layer.count_params() for layer, _ in used.values())
    flops = sum(flops for _, flops in used.values())
    return int(parameters), int(flops)


def _used_layers(walk):
    """`{id: (layer, flops)}` of the layers whose output reaches the end."""
    # Usage is carried on the tensors, so a layer whose output does not
    # reach the end is left out.
    carried = {}

    def visit(layer, args, kwargs):
        outputs = layer.compute_output_spec(*args, **kwargs)
        used = _used_by(carried, (args, kwargs))
        used[id(layer)] = (layer, _flops(layer, args, outputs))
        for y in keras.tree.flatten(outputs):
            carried[id(y)] = (y, used)
        return outputs

    return _used_by(carried, walk(visit))


def _used_by(carried, structure):
    used = {}
    for x in keras.tree.flatten(structure):
        entry = carried.get(id(x))
        if entry is not None and entry[0] is x:
            used.update(entry[1])
    return used


def _flops(layer, args, outputs):
    kernel = getattr(layer, "kernel", None)
    if kernel is None or not hasattr(kernel, "shape"):
        return 0
    kernel_size = math.prod(kernel.shape)
    if hasattr(layer, "kernel_size") and hasattr(layer, "strides"):
        shape = keras.tree.flatten(outputs)[0].shape
        channels_first = getattr(layer, "data_format", None) == (
            "channels_first"
        )
        spatial = shape[2:] if channels_first else shape[1:-1]
        return 2 * kernel_size * math.prod(spatial)
    if isinstance(layer, keras.layers.Dense):
        shape = keras.tree.flatten(args)[0].shape
        return 2 * kernel_size * math.prod(shape[1:-1])
    return 0
