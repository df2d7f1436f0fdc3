"""Keras activations grouped by the properties the layers rely on.

Activations are matched by their registered name, so a custom function
belongs to no group: the layers then take their general path.
"""

import keras

# Act on each value alone: a branch axis can be stacked through them.
ELEMENTWISE = frozenset(
    [
        "linear",
        "relu",
        "relu6",
        "leaky_relu",
        "elu",
        "selu",
        "gelu",
        "silu",
        "swish",
        "sigmoid",
        "hard_sigmoid",
        "hard_silu",
        "hard_swish",
        "tanh",
        "softplus",
        "softsign",
        "mish",
        "exponential",
        "log_sigmoid",
        "celu",
    ]
)

# `f(c * z) == c * f(z)` for `c >= 0`: a gate can scale the weights.
POSITIVELY_HOMOGENEOUS = frozenset(["linear", "relu", "leaky_relu"])

# Element-wise with `f(0) == 0`: a channel that is zero stays zero.
ZERO_PRESERVING = ELEMENTWISE - {
    "sigmoid",
    "hard_sigmoid",
    "softplus",
    "exponential",
    "log_sigmoid",
}


def name(activation):
    """The registered name of a Keras activation, or `None`."""
    try:
        serialized = keras.activations.serialize(activation)
    except (TypeError, ValueError):
        return None
    return serialized if isinstance(serialized, str) else None
