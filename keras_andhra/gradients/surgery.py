"""Gradient surgery on stacked gradients, in `keras.ops` (jit-able).

Rows are gradients flattened to `(num_rows, n)`. A row may cover several
variables: `segments` (`(n,)` ints, sorted) says which variable each entry
belongs to, and every dot product and projection is then taken per
segment, i.e. per variable. `segments=None` is one segment: the whole row.

Each function returns its result and `(projected, considered)`, counts of
(pair, segment) projections made out of those looked at, for the logs.
"""

from keras import ops


def segment_dots(rows, vector, segments, num_segments):
    """Per-segment dot products of every row with `vector`: `(k, m)`."""
    products = rows * vector[None]
    if segments is None:
        return ops.sum(products, axis=-1, keepdims=True)
    summed = ops.segment_sum(ops.transpose(products), segments, num_segments)
    return ops.transpose(summed)


def expand(coefficients, segments):
    """Per-segment coefficients `(k, m)` spread over entries: `(k, n)`."""
    if segments is None:
        return coefficients
    return ops.transpose(ops.take(ops.transpose(coefficients), segments, 0))


def gram_schmidt(rows, segments, num_segments, conflicting_only, epsilon):
    """Orthogonalised rows, in row order (row 0 has the highest priority).

    `u_0 = g_0`, `u_k = g_k - sum_{j<k} <g_k, u_j> / (<u_j, u_j> + eps) u_j`
    per segment. With `conflicting_only`, only components with
    `<g_k, u_j> < 0` are removed.
    """
    num_rows = rows.shape[0]
    units = [rows[0]]
    norms = [segment_dots(rows[:1], rows[0], segments, num_segments)[0]]
    projected = ops.zeros((), "float32")
    for k in range(1, num_rows):
        previous = ops.stack(units)
        dots = segment_dots(previous, rows[k], segments, num_segments)
        if conflicting_only:
            mask = ops.less(dots, 0.0)
        else:
            mask = ops.not_equal(dots, 0.0)
        coefficients = ops.where(
            mask, dots / (ops.stack(norms) + epsilon), ops.zeros_like(dots)
        )
        unit = rows[k] - ops.sum(
            expand(coefficients, segments) * previous, axis=0
        )
        projected = projected + ops.sum(ops.cast(mask, "float32"))
        units.append(unit)
        norms.append(segment_dots(unit[None], unit, segments, num_segments)[0])
    considered = num_rows * (num_rows - 1) // 2 * _count(num_segments)
    return ops.stack(units), (projected, considered)


def pcgrad(rows, order, segments, num_segments, epsilon):
    """PCGrad: every row projected off the others it conflicts with.

    For each row `i`, for `j` in `order` (a permutation of the rows, the
    same for every row, as in the official code), `j != i`: if
    `<g_i', g_j> < 0`, `g_i' -= <g_i', g_j> / (<g_j, g_j> + eps) g_j`.
    """
    num_rows = rows.shape[0]
    squares = ops.stack(
        [
            segment_dots(rows[i : i + 1], rows[i], segments, num_segments)[0]
            for i in range(num_rows)
        ]
    )
    indices = ops.expand_dims(ops.arange(num_rows, dtype="int32"), 1)
    result = rows
    projected = ops.zeros((), "float32")
    for t in range(num_rows):
        j = order[t]
        other = ops.take(rows, j, axis=0)
        dots = segment_dots(result, other, segments, num_segments)
        conflict = ops.logical_and(
            ops.less(dots, 0.0), ops.not_equal(indices, j)
        )
        norm = ops.take(squares, j, axis=0)[None]
        coefficients = ops.where(
            conflict, dots / (norm + epsilon), ops.zeros_like(dots)
        )
        result = result - expand(coefficients, segments) * other[None]
        projected = projected + ops.sum(ops.cast(conflict, "float32"))
    considered = num_rows * (num_rows - 1) * _count(num_segments)
    return result, (projected, considered)


def pairwise_cosines(rows, epsilon=1e-30):
    """Sum and number of the cosines between all pairs of rows."""
    num_rows = rows.shape[0]
    gram = ops.matmul(rows, ops.transpose(rows))
    norms = ops.sqrt(ops.maximum(ops.diagonal(gram), 0.0))
    cosines = gram / (norms[:, None] * norms[None, :] + epsilon)
    upper = ops.triu(ops.ones((num_rows, num_rows), "float32"), k=1)
    total = ops.sum(ops.cast(cosines, "float32") * upper)
    return total, num_rows * (num_rows - 1) // 2


def permutation_keys(step, num_rows, seed):
    """Pseudo-random keys `(num_rows,)` from the step number and a seed.

    Stateless, so that a jitted step needs no random state: an integer
    hash kept below 2**31 in int32 arithmetic. `argsort` of the keys is a
    permutation that changes from step to step.
    """
    prime = 32749
    step = ops.mod(ops.cast(step, "int32"), prime)
    rows = ops.arange(num_rows, dtype="int32")
    key = ops.mod(step * 181 + (seed % prime) * 7 + rows * 7919 + 1, prime)
    for multiplier, offset in ((31337, 977), (20011, 4099), (30011, 8191)):
        key = ops.mod(key * multiplier + rows * offset + step, prime)
    return key


def _count(num_segments):
    return 1 if num_segments is None else num_segments
