"""Gradient surgery through Gram matrices, in `keras.ops` (jit-able).

Every projection here (Gram-Schmidt, PCGrad) turns the heads' gradients
`g_1..g_K` into linear combinations of them, `g_i' = sum_l C[i, l] g_l`,
and the coefficients `C` follow from the inner products alone. So the
surgery takes the Gram matrix `A[i, j] = <g_i, g_j>` (one pass over the
gradients), does its arithmetic on `K x K` matrices, and touches the
gradients once more to form the update. Nothing `(K, n)`-sized is built
beyond the gradients themselves.

Rows are gradients flattened to `(K, n)`. A row may cover several
variables: `segments` (`(n,)` ints) says which variable each entry
belongs to, and Gram matrices are then taken per segment, `(m, K, K)`.
`segments=None` is one segment: the whole row.
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


def gram(rows, segments, num_segments):
    """Gram matrices of the rows, per segment: `(m, K, K)` float32."""
    rows = ops.cast(rows, "float32")
    num_rows = rows.shape[0]
    if segments is None:
        return ops.matmul(rows, ops.transpose(rows))[None]
    entries = [[None] * num_rows for _ in range(num_rows)]
    for i in range(num_rows):
        dots = segment_dots(rows[i:], rows[i], segments, num_segments)
        for offset in range(num_rows - i):
            entries[i][i + offset] = entries[i + offset][i] = dots[offset]
    return ops.stack([ops.stack(row, axis=-1) for row in entries], axis=-2)


#: Below this fraction of `<g_j, g_j>`, `<u_j, u_j>` counts as zero.
RELATIVE_TOLERANCE = 1e-5


def gram_schmidt(gram_matrix, conflicting_only, epsilon):
    """Coefficients of Gram-Schmidt in row order (row 0 first).

    `u_0 = g_0`, `u_k = g_k - sum_{j<k} <g_k, u_j> / (<u_j, u_j> + eps) u_j`
    per segment. With `conflicting_only`, the components come off one at
    a time, from the running remainder `r` (starting at `g_k`), for
    `j = 0..k-1`: if `<r, u_j> < 0`, `r -= <r, u_j> / (<u_j, u_j> + eps)
    u_j`; then `u_k = r`. (Once a projection is skipped the `u_j` are no
    longer orthogonal, and removing components measured on `g_k` itself
    could overshoot, turning `u_k` against `g_k`.)

    A `u_j` whose squared norm is below `RELATIVE_TOLERANCE` times
    `<g_j, g_j>` (`g_j` lies within about 0.2 degrees of the span of the
    gradients before it, as happens when more heads share a variable than
    it has entries) counts as zero: its direction is rounding noise, and
    projecting on it would amplify that noise.

    Returns:
        `(C, projected, considered)`: `u_k = sum_l C[:, k, l] g_l`
        (`(m, K, K)`), and how many (pair, segment) projections were made
        out of how many looked at.
    """
    num_segments, num_rows = gram_matrix.shape[0], gram_matrix.shape[1]
    identity = ops.eye(num_rows, dtype="float32")
    rows = []
    norms = []
    projected = ops.zeros((), "float32")
    for k in range(num_rows):
        row = ops.broadcast_to(identity[k], (num_segments, num_rows))
        if conflicting_only:
            for previous, norm in zip(rows, norms):
                # <r, u_j> = C_r A C_j^T
                dots = ops.sum(
                    ops.matmul(row[:, None, :], gram_matrix)[:, 0] * previous,
                    -1,
                )
                mask = ops.logical_and(ops.less(dots, 0.0), ops.isfinite(norm))
                coefficients = ops.where(
                    mask, dots / (norm + epsilon), ops.zeros_like(dots)
                )
                row = row - coefficients[:, None] * previous
                projected = projected + ops.sum(ops.cast(mask, "float32"))
        elif rows:
            previous = ops.stack(rows, axis=1)
            # <g_k, u_j> = sum_l C[j, l] <g_l, g_k>
            dots = ops.matmul(previous, gram_matrix[:, :, k : k + 1])[..., 0]
            norm = ops.stack(norms, axis=1)
            mask = ops.logical_and(ops.not_equal(dots, 0.0), ops.isfinite(norm))
            coefficients = ops.where(
                mask, dots / (norm + epsilon), ops.zeros_like(dots)
            )
            row = row - ops.matmul(coefficients[:, None, :], previous)[:, 0]
            projected = projected + ops.sum(ops.cast(mask, "float32"))
        rows.append(row)
        # <u_k, u_k> = C[k] A C[k]^T; below the tolerance it is noise.
        norm = ops.sum(
            row * ops.matmul(gram_matrix, row[..., None])[..., 0], -1
        )
        floor = RELATIVE_TOLERANCE * gram_matrix[:, k, k]
        norms.append(ops.where(ops.greater(norm, floor), norm, float("inf")))
    considered = num_rows * (num_rows - 1) // 2 * num_segments
    return ops.stack(rows, axis=1), projected, considered


def pcgrad(gram_matrix, order, epsilon):
    """Coefficients of PCGrad with one order for all rows.

    For each row `i`, for `j` in `order` (a permutation, the same for every
    row, as in the official code), `j != i`: if `<g_i', g_j> < 0`,
    `g_i' -= <g_i', g_j> / (<g_j, g_j> + eps) g_j`.

    Returns:
        `(C, projected, considered)` as for `gram_schmidt`.
    """
    num_segments, num_rows = gram_matrix.shape[0], gram_matrix.shape[1]
    coefficients = ops.broadcast_to(
        ops.eye(num_rows, dtype="float32"),
        (num_segments, num_rows, num_rows),
    )
    squares = ops.diagonal(gram_matrix, axis1=1, axis2=2)
    indices = ops.arange(num_rows, dtype="int32")
    projected = ops.zeros((), "float32")
    for t in range(num_rows):
        j = order[t]
        pick = ops.one_hot(j, num_rows, dtype="float32")
        column = ops.sum(gram_matrix * pick[None, None, :], axis=-1)
        # <g_i', g_j> = sum_l C[i, l] <g_l, g_j>
        dots = ops.matmul(coefficients, column[..., None])[..., 0]
        conflict = ops.logical_and(
            ops.less(dots, 0.0), ops.not_equal(indices, j)[None]
        )
        norm = ops.sum(squares * pick[None], axis=-1, keepdims=True)
        scale = ops.where(
            conflict, dots / (norm + epsilon), ops.zeros_like(dots)
        )
        coefficients = coefficients - scale[..., None] * pick[None, None, :]
        projected = projected + ops.sum(ops.cast(conflict, "float32"))
    considered = num_rows * (num_rows - 1) * num_segments
    return coefficients, projected, considered


def combine_rows(weights, rows, segments):
    """`sum_l weights[:, l] g_l`, per segment: weights `(m, K)` -> `(n,)`."""
    spread = expand(ops.transpose(ops.cast(weights, rows.dtype)), segments)
    return ops.sum(spread * rows, axis=0)


def cosine_totals(gram_matrix, epsilon=1e-30):
    """Sum and number of the pairwise cosines of a `(K, K)` Gram matrix."""
    num_rows = gram_matrix.shape[0]
    norms = ops.sqrt(ops.maximum(ops.diagonal(gram_matrix), 0.0))
    cosines = gram_matrix / (norms[:, None] * norms[None, :] + epsilon)
    upper = ops.triu(ops.ones((num_rows, num_rows), "float32"), k=1)
    return ops.sum(cosines * upper), num_rows * (num_rows - 1) // 2


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
    # Squaring makes the hash non-linear in (step, row); a linear one
    # gives few distinct orders. Every product stays below 2**31.
    for offset in (977, 4099, 8191):
        key = ops.mod(key * key + rows * offset + step * 3 + 1, prime)
    return key
