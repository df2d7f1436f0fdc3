"""The size gate shared by the size-gated layers (Nimble networks).

A size-gated layer allocates `capacity` units up front and scales unit
`m` (1-based) by a gate that a trainable size switches on smoothly:

* `method="paper"` (Radhakrishnan et al., method A): the size `N` is a unit
  count; unit `m` is scaled by `theta(min(N, capacity) - m + 1)`, with
  `theta(n) = 0` for `n < 0`, `sin^2(pi n / 2)` on `[0, 1]` and 1 above.
  `N = 2.5` means units 1 and 2 fully on, unit 3 half way (gate 0.5), the
  rest off.
* `method="controller"` (the released JAX code, method B): a controller `c`
  sets the fraction `s = sin^2(pi c / 2)` of the capacity that is on:
  the first `floor(s * capacity)` units fully, the next one by the
  fractional rest, the others not.

The size loss `penalty * (size - target)**2` joins the layer's losses.
"""

import math

import keras
from keras import ops

from keras_andhra.layers import activation_kinds
from keras_andhra.utils import arguments

METHODS = ("paper", "controller")
CONTROLLER_PENALTY = 0.32
CONTROLLER_TARGET = 1.0


def theta(n):
    """The smooth step: 0 below 0, sin^2(pi n / 2) on [0, 1], 1 above."""
    inside = ops.square(ops.sin(math.pi / 2.0 * n))
    return ops.where(
        ops.less_equal(n, 0.0),
        ops.zeros_like(n),
        ops.where(ops.greater_equal(n, 1.0), ops.ones_like(n), inside),
    )


class SizeGatedLayer(keras.layers.Layer):
    """Base of the size-gated layers: the size, its gate and its loss."""

    def __init__(
        self,
        capacity,
        size=0.0,
        target=None,
        penalty=None,
        method="paper",
        feed_size=False,
        activation=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        capacity_name="capacity",
        mode=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        method = arguments.renamed("method", method, "mode", mode, "paper")
        if not arguments.is_int(capacity) or capacity < 1:
            raise ValueError(
                f"`{capacity_name}` must be an int of at least 1, the number "
                "of units allocated up front. Received: "
                f"{capacity_name}={capacity!r}"
            )
        if method not in METHODS:
            raise ValueError(
                f"`method` must be one of {METHODS}. Received: "
                f"method={method!r}"
            )
        if not arguments.is_number(size):
            raise TypeError(f"`size` must be a number. Received: size={size!r}")
        if target is None and method == "controller":
            target = CONTROLLER_TARGET
        if target is not None and (
            not arguments.is_number(target) or target < 0
        ):
            raise ValueError(
                "`target` must be a non-negative number, the size the size "
                f"loss pulls towards (or None). Received: target={target!r}"
            )
        if penalty is None:
            penalty = CONTROLLER_PENALTY if method == "controller" else 0.0
        if not arguments.is_number(penalty) or penalty < 0:
            raise ValueError(
                "`penalty` must be a non-negative number, the weight of the "
                f"size loss. Received: penalty={penalty!r}"
            )
        if penalty > 0 and target is None:
            raise ValueError(
                "A size penalty needs a `target` size to pull towards. "
                f"Received: penalty={penalty}, target=None"
            )
        self.capacity = capacity
        self.initial_size = float(size)
        self.target = None if target is None else float(target)
        self.penalty = float(penalty)
        self.method = method
        self.feed_size = bool(feed_size)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build_weights(self, input_shape, window=()):
        """Kernel `window + (inputs [+ 1], capacity)`, bias and size.

        Returns the number of input features (channels).
        """
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                f"`{type(self).__name__}` needs a known last input "
                f"dimension. Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            shape=tuple(window)
            + (features + int(self.feed_size), self.capacity),
            initializer=self.kernel_initializer,
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(self.capacity,),
            initializer=self.bias_initializer,
            name="bias",
        )
        self.build_size()
        return features

    def build_size(self):
        """Creates the size and the size loss's target and penalty."""
        self.size = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_size),
            name="size",
        )
        # Variables, so that DynamicGrowth can schedule them without a
        # retrace.
        self.size_target = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.target or 0.0),
            trainable=False,
            name="size_target",
        )
        self.size_penalty = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.penalty),
            trainable=False,
            name="size_penalty",
        )

    def gate(self):
        """The gate of every unit, `(capacity,)`, from the current size."""
        size = ops.cast(self.size, "float32")
        units = ops.arange(1, self.capacity + 1, dtype="float32")
        if self.method == "paper":
            return theta(ops.minimum(size, float(self.capacity)) - units + 1.0)
        fraction = ops.square(ops.sin(math.pi / 2.0 * size))
        return ops.clip(fraction * self.capacity - units + 1.0, 0.0, 1.0)

    def size_loss(self):
        """`penalty * (size - target)**2` (a scalar tensor)."""
        size = ops.cast(self.size, "float32")
        return self.size_penalty * ops.square(size - self.size_target)

    def active_size(self):
        """The number of units now on, as a float (a fractional last unit)."""
        size = float(ops.convert_to_numpy(self.size))
        if self.method == "paper":
            return min(max(size, 0.0), float(self.capacity))
        return math.sin(math.pi / 2.0 * size) ** 2 * self.capacity

    @property
    def active_units(self):
        """The number of units with a non-zero gate."""
        return int(math.ceil(self.active_size() - 1e-9))

    def gated_weights(self):
        """`(kernel, bias, gate)` to compute with; adds the size loss.

        For a positively homogeneous activation (linear, ReLU, leaky ReLU)
        `act(z) * g == act(z * g)` with `g >= 0`, so the gate scales the
        kernel's and bias's output columns, a small tensor, instead of
        every output; `gate` is then `None`. Otherwise the outputs are
        gated after the activation (the paper's tanh).
        """
        self.add_loss(self.size_loss())
        gate = self.gate()
        kernel = self.kernel.value
        bias = self.bias.value
        name = activation_kinds.name(self.activation)
        if name in activation_kinds.POSITIVELY_HOMOGENEOUS:
            gate = ops.cast(gate, kernel.dtype)
            return kernel * gate, bias * gate, None
        return kernel, bias, gate

    def apply_gate(self, outputs, gate):
        """Activation, then the gate where it was not folded in."""
        outputs = self.activation(outputs)
        if gate is None:
            return outputs
        return outputs * ops.cast(gate, outputs.dtype)

    def with_size_input(self, inputs):
        """`inputs` with the size appended as a constant feature/channel."""
        size = ops.cast(self.size, inputs.dtype)
        column = ops.ones_like(inputs[..., :1]) * size
        return ops.concatenate([column, inputs], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "size": self.initial_size,
                "target": self.target,
                "penalty": self.penalty,
                "method": self.method,
                "feed_size": self.feed_size,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
