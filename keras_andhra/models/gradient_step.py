"""The gradient side of `AndhraModel`'s training step, backend-agnostic.

The per-backend steps (`keras_andhra/backend/`) compute gradients; this
module says what they mean: which heads reach which variable, what the
aggregator is told (`StepContext`), how loss scaling is undone around the
surgery, and how the representation surgery is installed at the splits.
"""

import contextlib

from keras import ops

from keras_andhra import backend
from keras_andhra.gradients import StepContext
from keras_andhra.gradients import projection
from keras_andhra.gradients import representation
from keras_andhra.layers import AndhraSplit
from keras_andhra.layers import BranchBlock
from keras_andhra.layers import branch_paths
from keras_andhra.layers import head_paths


def head_reach(model):
    """For every trainable variable, the heads whose path reaches it.

    Read from the graph once and cached (again when the variables
    change). A variable found on no head's path counts as reached by
    every head, so nothing is dropped that the walk could not see.
    """
    variables = model.trainable_variables
    key = tuple(id(v) for v in variables)
    cached = model.__dict__.get("_head_reach")
    if cached is not None and cached[0] == key:
        return cached[1]
    everyone = tuple(range(model.num_heads))
    try:
        on_path = [
            {
                id(v)
                for layer in head_paths.head_layers(model, head)
                for v in layer.trainable_variables
            }
            for head in everyone
        ]
    except ValueError:
        # A split or block nested inside a block: no per-head walk.
        on_path = None
    reach = []
    for v in variables:
        heads = ()
        if on_path is not None:
            heads = tuple(h for h in everyone if id(v) in on_path[h])
        reach.append(heads or everyone)
    model.__dict__["_head_reach"] = (key, reach)
    return reach


def head_weights(model):
    """The weight of every head in the compiled combined loss."""
    num_heads = model.num_heads
    if model._head_weights is not None:
        return tuple(model._head_weights)
    if model._head_reduction == "sum":
        return (1.0,) * num_heads
    return (1.0 / num_heads,) * num_heads


def context(model, step):
    """The `StepContext` of one training step."""
    return StepContext(
        head_names=tuple(model.head_names),
        head_weights=head_weights(model),
        step=step,
    )


def aggregate(model, head_gradients, extra, variables, scale, step):
    """Per-head gradients -> one gradient per variable, and diagnostics.

    Gradients of heads that do not reach a variable become `None`; loss
    scaling is undone before the aggregator sees the gradients and redone
    after (the scale is a power of two: both are exact), so that the
    optimizer still checks and unscales them.
    """
    reach = head_reach(model)

    def unscale(g):
        return g if scale is None else ops.divide(g, ops.cast(scale, g.dtype))

    per_head = [
        [
            None if g is None or head not in reach[v] else unscale(g)
            for v, g in enumerate(gradients)
        ]
        for head, gradients in enumerate(head_gradients)
    ]
    gradients, diagnostics = model.gradient_aggregator.combine(
        per_head, context(model, step)
    )
    if extra is not None:
        gradients = [
            g if e is None else unscale(e) if g is None else g + unscale(e)
            for g, e in zip(gradients, extra)
        ]
    if scale is not None:
        gradients = [
            None if g is None else ops.multiply(g, ops.cast(scale, g.dtype))
            for g in gradients
        ]
    gradients = [
        ops.zeros_like(v) if g is None else g
        for g, v in zip(gradients, variables)
    ]
    return gradients, diagnostics


@contextlib.contextmanager
def split_surgery(model, probe, scale, step):
    """Installs the aggregator's surgery at every split while tracing."""
    aggregator = model.gradient_aggregator
    priority = aggregator.priority(context(model, step))
    rank_of = {head: rank for rank, head in enumerate(priority)}
    leaves = model._collector().input
    leaf_paths = branch_paths.input_paths(leaves)
    splits = [
        layer
        for layer in model.layers
        if isinstance(layer, AndhraSplit) and layer.num_branches > 1
    ]
    for split in splits:
        split._fan_out = _fan_out_fn(
            split,
            _branch_ranks(split, leaf_paths, rank_of),
            aggregator,
            probe,
            scale,
            step,
        )
    try:
        yield
    finally:
        for split in splits:
            split._fan_out = None


def surgery_diagnostics(probe_gradient):
    """The logged diagnostics from the probe's gradient."""
    counts = [probe_gradient[i] for i in range(representation.PROBE_SIZE)]
    return projection.diagnostics(*counts)


def _fan_out_fn(split, ranks, aggregator, probe, scale, step):
    def fan_out(x, index):
        def combine(rows):
            if scale is not None:
                rows = rows / ops.cast(scale, rows.dtype)
            combined, counts = aggregator.surgery(
                rows, ranks[index], step, gram_sum=backend.cross_replica_sum
            )
            if scale is not None:
                combined = combined * ops.cast(scale, combined.dtype)
            return combined, counts

        return representation.fan_out(x, split.num_branches, combine, probe)

    return fan_out


def _branch_ranks(split, leaf_paths, rank_of):
    """Per incoming tensor, the priority rank of each of its branches.

    A branch ranks as the best-ranked head below it; a branch no head is
    below ranks last.
    """
    num_branches = split.num_branches
    try:
        paths = branch_paths.input_paths(split.output)
    except (AttributeError, ValueError):
        paths = None
    worst = len(rank_of)
    ranks = []
    for k in range(len(paths) if paths is not None else num_branches):
        if paths is None:
            ranks.append(k)
            continue
        path = paths[k]
        below = [
            rank_of[h]
            for h, leaf in enumerate(leaf_paths)
            if leaf[: len(path)] == path
        ]
        ranks.append(min(below) if below else worst)
    return [
        ranks[i : i + num_branches] for i in range(0, len(ranks), num_branches)
    ]


def set_branch_execution(model, per_head_gradients):
    """Re-resolves every `"auto"` block for the gradient path in use."""
    for layer in model.layers:
        if isinstance(layer, BranchBlock):
            layer._choose_auto_execution(per_head_gradients)
