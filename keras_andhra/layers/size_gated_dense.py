import keras
from keras import ops

from keras_andhra.layers import size_gate


@keras.saving.register_keras_serializable(package="keras_andhra")
class SizeGatedDense(size_gate.SizeGatedLayer):
    """A dense layer whose width a trainable size switches on and off.

    The layer allocates `max_units` units and multiplies unit `m`
    (1-based) of `activation(x W + b)` by a gate that a trainable scalar,
    the size `N`, opens smoothly (Nimble networks): with the default
    `method="paper"`, `theta(min(N, max_units) - m + 1)`, where `theta` is 0
    below 0, `sin^2(pi n / 2)` on `[0, 1]` and 1 above. `N` is trained by
    the same gradient descent as the weights; the size loss
    `penalty * (N - target)**2`, added to the layer's losses, pulls it
    towards a target, so the network grows (or shrinks) while it trains.
    Units whose gate is 0 output exactly 0 and get exactly zero gradient:
    their weights keep their initial values until they switch on.

    `theta` is flat at its ends, so at a whole-number size (0, 1, 2, ...)
    the data loss gives `N` no gradient; only the size loss moves it from
    there. The paper's networks start at `N0 = 0` with a size loss. Without
    one, start from a fractional size (or keep `N` fixed on purpose).

    With `feed_size=True`, `N` is also an input: it is prepended to `x`,
    so every unit sees it through its own weight (the paper's "prepended
    1", whose weight is `N`).

    `method="controller"` reproduces the released JAX code's variant: the
    trainable value is a controller `c`, the first `s * max_units` units
    are on with `s = sin^2(pi c / 2)` (the last one fractionally), and the
    size loss defaults to `0.32 * (c - 1)**2`, which drives the layer to
    full width. Unlike that code, the gate here is per unit (the released
    code passes a length-1 mask, scaling the whole layer by one number)
    and `c` gets the data loss's gradient too (the released code moves it
    by the size loss only, so growth there is a fixed schedule).

    `keras_andhra.callbacks.DynamicGrowth` logs the size, schedules the
    size loss and, when `N` nears `max_units`, widens the layer in place
    without changing what it computes.

    Args:
        max_units: The capacity: units allocated up front.
        activation: Activation applied before the gate (the paper: tanh).
        size: Initial size `N` (paper method: a unit count; 0 starts with no
            unit on) or controller value `c`.
        target: The size the size loss pulls towards (`None`: no size
            loss; controller method: 1).
        penalty: The size loss's weight `lambda` (`None`: 0, or 0.32 in
            controller method).
        method: `"paper"` or `"controller"` (formerly `mode`, which
            still works, with a deprecation warning).
        feed_size: Whether `N` is also an input feature.
        kernel_initializer: Initializer of the kernel.
        bias_initializer: Initializer of the bias.
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: A tensor `(..., features)`.

    Returns:
        A tensor `(..., max_units)`; units past the size are 0.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_andhra as ka

    layer = ka.layers.SizeGatedDense(9, activation="tanh", size=2.5,
                                     target=5.0, penalty=0.1)
    y = keras.ops.convert_to_numpy(layer(np.ones((4, 3), "float32")))
    layer.active_units  # 3: units 1, 2 on, unit 3 at half gate
    y[0, 3]  # 0.0: unit 4 is off
    ```

    Reference:
        Radhakrishnan, Lindner, Miller, Sinha and Ditto, "When less is
        more: evolving large neural networks from small ones",
        arXiv:2501.18012 (2025).
    """

    def __init__(
        self,
        max_units,
        activation=None,
        size=0.0,
        target=None,
        penalty=None,
        method="paper",
        feed_size=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(
            max_units,
            size=size,
            target=target,
            penalty=penalty,
            method=method,
            feed_size=feed_size,
            activation=activation,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            capacity_name="max_units",
            **kwargs,
        )
        self.input_spec = keras.InputSpec(min_ndim=2)

    @property
    def max_units(self):
        """The capacity (grows when `DynamicGrowth` widens the layer)."""
        return self.capacity

    @property
    def units(self):
        return self.capacity

    def build(self, input_shape):
        features = self.build_weights(input_shape)
        self.input_spec = keras.InputSpec(min_ndim=2, axes={-1: features})

    def call(self, inputs):
        x = self.with_size_input(inputs) if self.feed_size else inputs
        kernel, bias, gate = self.gated_weights()
        return self.apply_gate(ops.add(ops.matmul(x, kernel), bias), gate)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.capacity,)

    def get_config(self):
        config = super().get_config()
        config["max_units"] = self.capacity
        return config
