"""Shared machinery of the aggregators that project head gradients.

Variables are grouped by the heads that reach them (the model gives `None`
for the others). A group's gradients are flattened into one row per head;
their Gram matrix (per variable, or summed over the whole parameter vector
with `granularity="global"`) gives the coefficients of the projected
gradients as combinations of the originals (`surgery`), and one weighted
sum of the rows gives the update. A variable that one head reaches needs
no projection per variable: its update is that head's weighted gradient.
"""

import numpy as np
from keras import ops

from keras_andhra.gradients import surgery
from keras_andhra.gradients.gradient_aggregator import GradientAggregator
from keras_andhra.gradients.gradient_aggregator import StepContext

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
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, (int, float))
            or epsilon < 0
        ):
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
        """`(C, projected, considered)` for rows of `heads` (see surgery)."""
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
        priority = self.priority(context)
        position = {head: p for p, head in enumerate(priority)}
        weights = context.head_weights
        groups = []
        for heads, variables in _groups(head_gradients, position):
            rows, segments, num_segments, split = _flatten(
                head_gradients, heads, variables
            )
            gram_matrix = None
            if len(heads) > 1 or self.granularity == "global":
                gram_matrix = surgery.gram(rows, segments, num_segments)
            groups.append(
                (heads, variables, rows, segments, split, gram_matrix)
            )
        totals = _Totals()
        for heads, _, _, _, _, gram_matrix in groups:
            if len(heads) > 1:
                totals.add_cosines(
                    surgery.cosine_totals(ops.sum(gram_matrix, axis=0))
                )

        if self.granularity == "global":
            everyone = sorted(range(num_heads), key=lambda h: position[h])
            total = ops.zeros((num_heads, num_heads), "float32")
            for heads, _, _, _, _, gram_matrix in groups:
                embed = _embedding(heads, everyone)
                total = total + ops.matmul(
                    ops.matmul(ops.transpose(embed), ops.sum(gram_matrix, 0)),
                    embed,
                )
            coefficients, projected, considered = self.coefficients(
                total[None], everyone, context
            )
            totals.add_projections(projected, considered)

        if per_head:
            result = [[None] * num_variables for _ in range(num_heads)]
        else:
            result = [None] * num_variables
        for heads, variables, rows, segments, split, gram_matrix in groups:
            if self.granularity == "global":
                columns = [everyone.index(h) for h in heads]
                group_coefficients = ops.take(coefficients, columns, axis=2)
                owners = everyone
                segments = None
            elif len(heads) > 1:
                group_coefficients, projected, considered = self.coefficients(
                    gram_matrix, heads, context
                )
                totals.add_projections(projected, considered)
                owners = heads
            else:
                group_coefficients = ops.ones((1, 1, 1), "float32")
                segments = None
                owners = heads
            if per_head:
                for i, owner in enumerate(owners):
                    vector = surgery.combine_rows(
                        group_coefficients[:, i], rows, segments
                    )
                    for v, gradient in zip(variables, split(vector)):
                        result[owner][v] = gradient
                continue
            row_weights = ops.convert_to_tensor(
                [[weights[h] for h in owners]], "float32"
            )
            combined = ops.matmul(row_weights, group_coefficients)[:, 0]
            vector = surgery.combine_rows(combined, rows, segments)
            for v, gradient in zip(variables, split(vector)):
                result[v] = gradient
        if per_head:
            return result
        return result, totals.diagnostics()

    def surgery(self, rows, ranks, step, gram_sum=None):
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
        gram_matrix = surgery.gram(ordered, None, None)
        if gram_sum is not None:
            gram_matrix = gram_sum(gram_matrix)
        coefficients, projected, considered = self.coefficients(
            gram_matrix, list(range(len(order))), context
        )
        combined = surgery.combine_rows(
            ops.sum(coefficients, axis=1), ordered, None
        )
        cosine_total, pairs = surgery.cosine_totals(gram_matrix[0])
        return combined, (cosine_total, pairs, projected, considered)

    def get_config(self):
        return {"granularity": self.granularity, "epsilon": self.epsilon}


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
