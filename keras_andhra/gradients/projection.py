"""Shared machinery of the aggregators that project head gradients.

Variables are grouped by the heads that reach them (the model gives `None`
for the others). A group's gradients are flattened into one row per head,
projected (per variable through segments, or over the whole parameter
vector with `granularity="global"`), combined with the compiled head
weights and split back into variables. A variable that one head reaches
needs no projection: its update is that head's weighted gradient.
"""

import numpy as np
from keras import ops

from keras_andhra.gradients import surgery
from keras_andhra.gradients.gradient_aggregator import GradientAggregator
from keras_andhra.gradients.gradient_aggregator import StepContext

GRANULARITIES = ("per_variable", "global", "representation")
DIAGNOSTIC_KEYS = ("gradient_cosine", "gradient_projected")


class ProjectingAggregator(GradientAggregator):
    """Base of `OSGD` and `PCGrad`: grouping, flattening, diagnostics."""

    diagnostic_keys = DIAGNOSTIC_KEYS

    def __init__(self, granularity, epsilon):
        if granularity not in GRANULARITIES:
            raise ValueError(
                f"`granularity` must be one of {GRANULARITIES}. Received: "
                f"granularity={granularity!r}"
            )
        if not isinstance(epsilon, (int, float)) or epsilon < 0:
            raise ValueError(
                "`epsilon` must be a non-negative number. Received: "
                f"epsilon={epsilon!r}"
            )
        self.granularity = granularity
        self.epsilon = float(epsilon)

    @property
    def needs_head_gradients(self):
        return self.granularity != "representation"

    def project(self, rows, heads, segments, num_segments, context):
        """Projects `rows` (one per head of `heads`); returns rows, counts."""
        raise NotImplementedError

    def priority(self, context):
        """Head indices, highest priority first."""
        return list(range(len(context.head_names)))

    def aggregate(self, head_gradients):
        context = StepContext.default(len(head_gradients))
        return self.combine(head_gradients, context)[0]

    def combine(self, head_gradients, context):
        if self.granularity == "representation":
            raise ValueError(
                'With `granularity="representation"` the surgery happens at '
                "the split points inside the model's forward pass; the "
                "model does not compute per-head gradients to combine."
            )
        num_variables = len(head_gradients[0])
        rank = {head: r for r, head in enumerate(self.priority(context))}
        weights = context.head_weights
        result = [None] * num_variables
        totals = _Totals()
        for heads, variables in _groups(
            head_gradients, rank, self.granularity == "global"
        ):
            if len(heads) == 1:
                for v in variables:
                    result[v] = head_gradients[heads[0]][v] * weights[heads[0]]
                continue
            rows, segments, num_segments, split = _flatten(
                head_gradients, heads, variables
            )
            if self.granularity == "global":
                segments, num_segments = None, None
            projected, counts = self.project(
                rows, heads, segments, num_segments, context
            )
            totals.add(surgery.pairwise_cosines(rows), counts)
            row_weights = ops.convert_to_tensor(
                [[weights[h] for h in heads]], dtype=rows.dtype
            )
            combined = ops.matmul(row_weights, projected)[0]
            for v, gradient in zip(variables, split(combined)):
                result[v] = gradient
        return result, totals.diagnostics()

    def surgery(self, rows, ranks, step):
        """Representation surgery: rows of branch gradients -> their sum.

        Args:
            rows: `(num_branches, n)` gradients arriving at a split from
                its branches.
            ranks: Static priority rank of every branch (0 is the highest).
            step: The step number.

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
        projected, (projected_count, considered) = self.project(
            ordered, list(range(len(order))), None, None, context
        )
        cosine_total, pairs = surgery.pairwise_cosines(ordered)
        counts = (cosine_total, pairs, projected_count, considered)
        return ops.sum(projected, axis=0), counts

    def get_config(self):
        return {"granularity": self.granularity, "epsilon": self.epsilon}


class _Totals:
    """Running sums of the diagnostics over variable groups."""

    def __init__(self):
        self.cosine = ops.zeros((), "float32")
        self.pairs = 0
        self.projected = ops.zeros((), "float32")
        self.considered = 0

    def add(self, cosines, counts):
        self.cosine = self.cosine + cosines[0]
        self.pairs += cosines[1]
        self.projected = self.projected + counts[0]
        self.considered += counts[1]

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


def _groups(head_gradients, rank, single):
    """`[(heads in priority order, variable indices)]`, static."""
    num_heads = len(head_gradients)
    groups = {}
    for v in range(len(head_gradients[0])):
        heads = [
            h for h in range(num_heads) if head_gradients[h][v] is not None
        ]
        if not heads:
            continue
        key = tuple(range(num_heads)) if single else tuple(heads)
        groups.setdefault(key, []).append(v)
    return [
        (sorted(heads, key=lambda h: (rank.get(h, len(rank)), h)), variables)
        for heads, variables in groups.items()
    ]


def _flatten(head_gradients, heads, variables):
    """Rows `(len(heads), n)`, segment ids and a function splitting back."""
    shapes = []
    for v in variables:
        for h in heads:
            if head_gradients[h][v] is not None:
                shapes.append(tuple(head_gradients[h][v].shape))
                break
    sizes = [int(np.prod(shape)) for shape in shapes]
    rows = []
    for h in heads:
        pieces = []
        for v, shape, size in zip(variables, shapes, sizes):
            g = head_gradients[h][v]
            pieces.append(
                ops.zeros((size,), "float32")
                if g is None
                else ops.reshape(g, (size,))
            )
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
