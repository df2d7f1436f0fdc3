"""Surgery at the split points: the `"representation"` granularity.

At an ANDHRA split one signal `x` feeds every branch. In the backward
pass the gradients arriving from the branches are summed into `x`'s
gradient. `fan_out` hands out the branch copies through one op whose
forward pass is the identity and whose backward pass combines the
branches' gradients with an aggregator's surgery instead of the plain
sum: per-head surgery at the cost of one backward pass.

The diagnostics leave the backward pass as the gradient of a `probe`
input (zeros, shape `(4,)`): `(cosine total, pairs, projected,
considered)`, summed over every split. The training step asks for the
probe's gradient next to the variables'.
"""

from keras import ops

PROBE_SIZE = 4


def fan_out(x, num_branches, merge, probe):
    """Returns `num_branches` copies of `x` with a surgical gradient.

    Args:
        x: The signal at the split.
        num_branches: How many copies.
        merge: `merge(rows) -> (merged, counts)`: gradients of the
            copies `(num_branches, n)` in float32 -> one gradient `(n,)`
            and the four diagnostic counts.
        probe: The probe tensor, `(4,)` float32.

    Returns:
        A list of `num_branches` tensors equal to `x`.
    """

    @ops.custom_gradient
    def copies(x, probe):
        stacked = ops.stack([x] * num_branches)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            rows = ops.reshape(
                ops.cast(upstream, "float32"), (num_branches, -1)
            )
            merged, counts = merge(rows)
            gradient = ops.cast(ops.reshape(merged, ops.shape(x)), x.dtype)
            counts = ops.stack([ops.cast(c, "float32") for c in counts])
            return gradient, counts

        return stacked, grad

    # unstack's gradient is one stack; slicing would scatter a full-size
    # zero tensor per branch.
    return ops.unstack(copies(x, probe), num_branches, axis=0)
