"""Shared machinery of the aggregators that project head gradients.

Variables are grouped by the heads that reach them (the model gives `None`
for the others). A group's gradients are flattened into one row per head;
their Gram matrix (per variable, or summed over the whole parameter vector
with `granularity="global"`) gives the coefficients of the projected
gradients as combinations of the originals (`coefficients`), and one weighted
sum of the rows gives the update. A variable that one head reaches needs
no projection per variable: its update is that head's weighted gradient.
"""

import typing

import numpy as np
from keras import ops

from keras_andhra.gradients import gram
from keras_andhra.gradients.gradient_aggregator import GradientAggregator
from keras_andhra.gradients.gradient_aggregator import StepContext
from keras_andhra.utils import arguments

GRANULARITIES = ("per_variable", "global", "representation")
DIAGNOSTIC_KEYS = ("gradient_cosine", "gradient_projected")


class ProjectingAggregator(GradientAggregator):
    """Base of `OSGD` and `PCGrad`: grouping, Gram matrices, diagnostics."""

    diagnostic_keys = DIAGNOSTIC_KEYS

    def __init__(self, granularity, epsilon):
        if granularity not in GRANULARITIES:
            raise ValueError(
                f"`granularity` must be one of {GRANULARITIES}. Received: "
                f"granularity={granularity!r}"
            )
        if not arguments.is_number(epsilon) or epsilon < 0:
            raise ValueError(
                "`epsilon` must be a non-negative number. Received: "
                f"epsilon={epsilon!r}"
            )
        self.granularity = granularity
        self.epsilon = float(epsilon)

    @property
    def needs_head_gradients(self):
        return self.granularity != "representation"

    def coefficients(self, gram_matrix, heads, context):
        """`(C, projected, considered)` for rows of `heads`: the surgery."""
        raise NotImplementedError

    def priority(self, context):
        """Head indices, highest priority first."""
        return list(range(len(context.head_names)))

    def aggregate(self, head_gradients):
        context = StepContext.default(len(head_gradients))
        return self.combine(head_gradients, context)[0]

    def combine(self, head_gradients, context):
        return self._run(head_gradients, context, per_head=False)

    def project_heads(self, head_gradients, context=None):
        """Every head's gradient after the surgery, before combining.

        For `OSGD` these are the orthogonalised `u_k`, for `PCGrad` the
        projected `g_i'`; the update is their sum weighted by the heads'
        compiled weights. For inspection and tests: the training step
        forms only the weighted sum.

        Args:
            head_gradients: As for `aggregate`.
            context: A `StepContext` (default: unnamed heads, step 0).

        Returns:
            One list per head with one gradient (or `None`) per variable.
        """
        if context is None:
            context = StepContext.default(len(head_gradients))
        return self._run(head_gradients, context, per_head=True)

    def _run(self, head_gradients, context, per_head):
        if self.granularity == "representation":
            raise ValueError(
                'With `granularity="representation"` the surgery happens at '
                "the split points inside the model's forward pass; the "
                "model does not compute per-head gradients to combine."
            )
        num_heads = len(head_gradients)
        num_variables = len(head_gradients[0])
        position = {h: p for p, h in enumerate(self.priority(context))}
        groups = self._flattened_groups(head_gradients, position)
        totals = _Totals()
        for group in groups:
            if len(group.heads) > 1:
                totals.add_cosines(
                    gram.cosine_totals(ops.sum(group.gram_matrix, axis=0))
                )
        if self.granularity == "global":
            everyone = sorted(range(num_heads), key=lambda h: position[h])
            coefficients = self._global_coefficients(
                groups, everyone, context, totals
            )
        if per_head:
            result = [[None] * num_variables for _ in range(num_heads)]
        else:
            result = [None] * num_variables
        for group in groups:
            if self.granularity == "global":
                columns = [everyone.index(h) for h in group.heads]
                owners = everyone
                group_coefficients = ops.take(coefficients, columns, axis=2)
                segments = None
            else:
                owners = group.heads
                group_coefficients, segments = self._group_coefficients(
                    group, context, totals
                )
            if per_head:
                for i, owner in enumerate(owners):
                    group.write(
                        result[owner], group_coefficients[:, i], segments
                    )
                continue
            row_weights = ops.convert_to_tensor(
                [[context.head_weights[h] for h in owners]], "float32"
            )
            combined = ops.matmul(row_weights, group_coefficients)[:, 0]
            group.write(result, combined, segments)
        if per_head:
            return result
        return result, totals.diagnostics()

    def _flattened_groups(self, head_gradients, position):
        """The variable groups, flattened, with their Gram matrices."""
        groups = []
        for heads, variables in _groups(head_gradients, position):
            rows, segments, num_segments, split = _flatten(
                head_gradients, heads, variables
            )
            gram_matrix = None
            if len(heads) > 1 or self.granularity == "global":
                gram_matrix = gram.gram(rows, segments, num_segments)
            groups.append(
                _Group(heads, variables, rows, segments, split, gram_matrix)
            )
        return groups

    def _global_coefficients(self, groups, everyone, context, totals):
        """One surgery on the Gram matrix of the whole parameter vector."""
        num_heads = len(everyone)
        total = ops.zeros((num_heads, num_heads), "float32")
        for group in groups:
            embed = _embedding(group.heads, everyone)
            total = total + ops.matmul(
                ops.matmul(ops.transpose(embed), ops.sum(group.gram_matrix, 0)),
                embed,
            )
        coefficients, projected, considered = self.coefficients(
            total[None], everyone, context
        )
        totals.add_projections(projected, considered)
        return coefficients

    def _group_coefficients(self, group, context, totals):
        """`(coefficients, segments)` of one group's own surgery."""
        if len(group.heads) == 1:
            # One head: its gradient as it is.
            return ops.ones((1, 1, 1), "float32"), None
        coefficients, projected, considered = self.coefficients(
            group.gram_matrix, group.heads, context
        )
        totals.add_projections(projected, considered)
        return coefficients, group.segments

    def merge_branch_gradients(self, rows, ranks, step, gram_sum=None):
        """Representation surgery: rows of branch gradients -> their sum.

        Args:
            rows: `(num_branches, n)` gradients arriving at a split from
                its branches.
            ranks: Static priority rank of every branch (0 is the highest).
            step: The step number.
            gram_sum: Optional function that sums a Gram matrix over the
                shards of the batch (the replicas of a data-parallel
                step). The rows of different samples are disjoint
                coordinates, so the sum is the whole batch's Gram matrix
                and every shard projects with the same coefficients.

        Returns:
            `(combined, counts)`: the surgically combined gradient `(n,)`
            and `(cosine_total, pairs, projected, considered)`.
        """
        order = sorted(range(len(ranks)), key=lambda b: (ranks[b], b))
        ordered = ops.stack([rows[b] for b in order])
        context = StepContext(
            head_names=tuple(str(b) for b in order),
            head_weights=(1.0,) * len(order),
            step=step,
        )
        gram_matrix = gram.gram(ordered, None, None)
        if gram_sum is not None:
            gram_matrix = gram_sum(gram_matrix)
        coefficients, projected, considered = self.coefficients(
            gram_matrix, list(range(len(order))), context
        )
        combined = gram.combine_rows(
            ops.sum(coefficients, axis=1), ordered, None
        )
        cosine_total, pairs = gram.cosine_totals(gram_matrix[0])
        return combined, (cosine_total, pairs, projected, considered)

    def get_config(self):
        return {"granularity": self.granularity, "epsilon": self.epsilon}


class _Group(typing.NamedTuple):
    """Variables reached by the same heads, as rows of one matrix."""

    heads: list
    variables: list
    rows: object
    segments: object
    split: object
    gram_matrix: object

    def write(self, result, coefficients, segments):
        """Stores the rows combined by `coefficients` into `result`."""
        vector = gram.combine_rows(coefficients, self.rows, segments)
        for v, gradient in zip(self.variables, self.split(vector)):
            result[v] = gradient


class _Totals:
    """Running sums of the diagnostics over variable groups."""

    def __init__(self):
        self.cosine = ops.zeros((), "float32")
        self.pairs = 0
        self.projected = ops.zeros((), "float32")
        self.considered = 0

    def add_cosines(self, cosines):
        self.cosine = self.cosine + cosines[0]
        self.pairs += cosines[1]

    def add_projections(self, projected, considered):
        self.projected = self.projected + projected
        self.considered += considered

    def diagnostics(self):
        return diagnostics(
            self.cosine, self.pairs, self.projected, self.considered
        )


def diagnostics(cosine_total, pairs, projected, considered):
    """The logged diagnostics from summed counts (tensors or numbers)."""

    def ratio(total, count):
        count = ops.maximum(ops.cast(count, "float32"), 1.0)
        return ops.cast(total, "float32") / count

    return {
        "gradient_cosine": ratio(cosine_total, pairs),
        "gradient_projected": ratio(projected, considered),
    }


def _groups(head_gradients, position):
    """`[(heads in priority order, variable indices)]`, static."""
    num_heads = len(head_gradients)
    groups = {}
    for v in range(len(head_gradients[0])):
        heads = tuple(
            h for h in range(num_heads) if head_gradients[h][v] is not None
        )
        if heads:
            groups.setdefault(heads, []).append(v)
    return [
        (sorted(heads, key=lambda h: position[h]), variables)
        for heads, variables in groups.items()
    ]


def _embedding(heads, everyone):
    """A `(len(heads), len(everyone))` 0/1 matrix placing group rows."""
    embed = np.zeros((len(heads), len(everyone)), "float32")
    for i, head in enumerate(heads):
        embed[i, everyone.index(head)] = 1.0
    return ops.convert_to_tensor(embed)


def _flatten(head_gradients, heads, variables):
    """Rows `(len(heads), n)`, segment ids and a function splitting back."""
    shapes = [tuple(head_gradients[heads[0]][v].shape) for v in variables]
    sizes = [int(np.prod(shape)) for shape in shapes]
    rows = []
    for h in heads:
        pieces = [
            ops.reshape(head_gradients[h][v], (size,))
            for v, size in zip(variables, sizes)
        ]
        rows.append(pieces[0] if len(pieces) == 1 else ops.concatenate(pieces))
    rows = ops.stack(rows)
    if len(variables) == 1:
        segments, num_segments = None, None
    else:
        segments = ops.convert_to_tensor(
            np.repeat(np.arange(len(variables), dtype="int32"), sizes)
        )
        num_segments = len(variables)
    boundaries = np.cumsum(sizes)[:-1].tolist()

    def split(vector):
        parts = ops.split(vector, boundaries) if boundaries else [vector]
        return [ops.reshape(p, s) for p, s in zip(parts, shapes)]

    return rows, segments, num_segments, split
