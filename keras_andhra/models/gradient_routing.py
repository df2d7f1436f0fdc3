"""Where head gradients go: reach, the aggregator's call, split surgery.

The training step (`training_step.HeadStep`) hands every head's gradient
here. This module knows which heads reach which variable (read from the
graph once), tells the aggregator about the step (`StepContext`), undoes
and redoes loss scaling around the arithmetic, fills what no gradient
reached, and, for `granularity="representation"`, installs the
aggregator's surgery at every split through `AndhraSplit.set_fan_out`.
"""

import contextlib

from keras import ops

from keras_andhra import backend
from keras_andhra.gradients import StepContext
from keras_andhra.gradients import projection
from keras_andhra.gradients import representation
from keras_andhra.layers import AndhraSplit
from keras_andhra.layers import branch_paths
from keras_andhra.models import head_paths


class GradientRouting:
    """Routes one model's head gradients to its aggregator.

    Args:
        model: The `AndhraModel`.
        aggregator: Its `GradientAggregator`.
    """

    def __init__(self, model, aggregator):
        self.model = model
        self.aggregator = aggregator
        self._reach = None

    def head_reach(self):
        """For every trainable variable, the heads whose path reaches it.

        Read from the graph once and cached (again when the variables
        change: growth). A variable found on no head's path counts as
        reached by every head, so nothing is dropped that the walk could
        not see.
        """
        variables = self.model.trainable_variables
        key = tuple(id(v) for v in variables)
        if self._reach is not None and self._reach[0] == key:
            return self._reach[1]
        everyone = tuple(range(self.model.num_heads))
        try:
            on_path = [
                {
                    id(v)
                    for layer in head_paths.head_layers(self.model, head)
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
        self._reach = (key, reach)
        return reach

    def context(self, iteration):
        """The `StepContext` of one training step."""
        return StepContext(
            head_names=tuple(self.model.head_names),
            head_weights=tuple(self.model.head_loss_weights),
            step=iteration,
        )

    def aggregate(self, head_gradients, extra, scale, iteration):
        """Per-head gradients -> one gradient per variable, diagnostics.

        Gradients of heads that do not reach a variable become `None`;
        loss scaling is undone before the aggregator sees the gradients
        and redone after (the scale is a power of two: both are exact), so
        that the optimizer still checks and unscales them. Variables that
        no gradient reached get zeros.

        Args:
            head_gradients: One list of gradients (or `None`) per head,
                summed over replicas.
            extra: Gradients to add once (the regularisation's), or
                `None`.
            scale: The loss scale the gradients carry.
            iteration: The optimizer's step counter.
        """
        reach = self.head_reach()

        def unscale(g):
            return ops.divide(g, ops.cast(scale, g.dtype))

        per_head = [
            [
                None if g is None or head not in reach[v] else unscale(g)
                for v, g in enumerate(gradients)
            ]
            for head, gradients in enumerate(head_gradients)
        ]
        gradients, diagnostics = self.aggregator.combine(
            per_head, self.context(iteration)
        )
        if extra is not None:
            gradients = [
                g if e is None else unscale(e) if g is None else g + unscale(e)
                for g, e in zip(gradients, extra)
            ]
        gradients = [
            None if g is None else ops.multiply(g, ops.cast(scale, g.dtype))
            for g in gradients
        ]
        return fill_unreached(gradients, self.model), diagnostics

    @contextlib.contextmanager
    def split_surgery(self, probe, scale, iteration):
        """Installs the aggregator's surgery at every split, for a trace.

        While active, every `AndhraSplit` with two branches or more hands
        out its copies through an op whose backward pass merges the
        branches' gradients with the aggregator's surgery, and adds the
        diagnostic counts to the gradient of `probe`.
        """
        priority = self.aggregator.priority(self.context(iteration))
        rank_of = {head: rank for rank, head in enumerate(priority)}
        leaves = self.model.head_collector.input
        leaf_paths = branch_paths.input_paths(leaves)
        splits = [
            layer
            for layer in self.model.layers
            if isinstance(layer, AndhraSplit) and layer.num_branches > 1
        ]
        for split in splits:
            ranks = _branch_ranks(split, leaf_paths, rank_of)
            split.set_fan_out(
                self._fan_out_fn(split, ranks, probe, scale, iteration)
            )
        try:
            yield
        finally:
            for split in splits:
                split.set_fan_out(None)

    def _fan_out_fn(self, split, ranks, probe, scale, iteration):
        aggregator = self.aggregator

        def fan_out(x, index):
            def merge(rows):
                rows = rows / ops.cast(scale, rows.dtype)
                merged, counts = aggregator.merge_branch_gradients(
                    rows,
                    ranks[index],
                    iteration,
                    gram_sum=backend.cross_replica_sum,
                )
                return merged * ops.cast(scale, merged.dtype), counts

            return representation.fan_out(x, split.num_branches, merge, probe)

        return fan_out


def surgery_diagnostics(probe_gradient):
    """The logged diagnostics from the gradient of the surgery probe."""
    counts = [probe_gradient[i] for i in range(representation.PROBE_SIZE)]
    return projection.diagnostics(*counts)


def fill_unreached(gradients, model):
    """Zeros for the variables that no gradient reached."""
    return [
        ops.zeros(v.shape, v.dtype) if g is None else g
        for g, v in zip(gradients, model.trainable_variables)
    ]


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
