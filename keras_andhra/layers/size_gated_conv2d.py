import keras
from keras import ops

from keras_andhra.layers import size_gate
from keras_andhra.utils import arguments

_PADDINGS = ("valid", "same")


@keras.saving.register_keras_serializable(package="keras_andhra")
class SizeGatedConv2D(size_gate.SizeGatedLayer):
    """A 2D convolution whose filters a trainable size switches on and off.

    The convolutional form of `SizeGatedDense`: `max_filters` filters are
    allocated up front and output channel `m` (1-based) of
    `activation(conv(x) + b)` is multiplied by the gate of the trainable
    size `N` (`method="paper"`: `theta(min(N, max_filters) - m + 1)`). The
    size loss `penalty * (N - target)**2` joins the layer's losses. With
    `feed_size=True`, `N` enters as an extra constant input channel.
    Channels whose gate is 0 are exactly 0 and get exactly zero gradient.
    Channels-last inputs.

    Args:
        max_filters: The capacity: filters allocated up front.
        kernel_size: An int or a pair, the convolution window.
        strides: An int or a pair.
        padding: `"valid"` or `"same"`.
        activation: Activation applied before the gate.
        size: Initial size `N` (or controller value `c`).
        target: The size the size loss pulls towards, or `None`.
        penalty: The size loss's weight (`None`: 0, or 0.32 in controller
            method).
        method: `"paper"` or `"controller"` (see `SizeGatedDense`).
        feed_size: Whether `N` is also an input channel.
        **kwargs: `kernel_initializer`, `bias_initializer`, and base layer
            keyword arguments such as `name`.

    Call arguments:
        inputs: A tensor `(batch, height, width, channels)`.

    Returns:
        A tensor `(batch, new_height, new_width, max_filters)`.

    Example:

    ```python
    import numpy as np
    import keras_andhra as ka

    layer = ka.layers.SizeGatedConv2D(16, 3, padding="same",
                                      activation="relu", size=4.0)
    y = layer(np.ones((2, 8, 8, 3), "float32"))
    y.shape, layer.active_units  # (2, 8, 8, 16), 4
    ```

    Reference:
        Radhakrishnan, Lindner, Miller, Sinha and Ditto, "When less is
        more: evolving large neural networks from small ones",
        arXiv:2501.18012 (2025).
    """

    def __init__(
        self,
        max_filters,
        kernel_size,
        strides=1,
        padding="valid",
        activation=None,
        size=0.0,
        target=None,
        penalty=None,
        method="paper",
        feed_size=False,
        **kwargs,
    ):
        super().__init__(
            max_filters,
            size=size,
            target=target,
            penalty=penalty,
            method=method,
            feed_size=feed_size,
            activation=activation,
            capacity_name="max_filters",
            **kwargs,
        )
        if padding not in _PADDINGS:
            raise ValueError(
                f"`padding` must be one of {_PADDINGS}. Received: "
                f"padding={padding!r}"
            )
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = padding
        self.input_spec = keras.InputSpec(ndim=4)

    @property
    def max_filters(self):
        """The capacity (grows when `DynamicGrowth` widens the layer)."""
        return self.capacity

    @property
    def filters(self):
        return self.capacity

    def build(self, input_shape):
        channels = self.build_weights(input_shape, self.kernel_size)
        self.input_spec = keras.InputSpec(ndim=4, axes={-1: channels})

    def call(self, inputs):
        x = self.with_size_input(inputs) if self.feed_size else inputs
        kernel, bias, gate = self.gated_weights()
        outputs = ops.conv(
            x, kernel, strides=self.strides, padding=self.padding
        )
        return self.apply_gate(ops.add(outputs, bias), gate)

    def compute_output_shape(self, input_shape):
        spatial = []
        for size, kernel, stride in zip(
            input_shape[1:3], self.kernel_size, self.strides
        ):
            if size is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(-(-size // stride))
            else:
                spatial.append((size - kernel) // stride + 1)
        return (input_shape[0], *spatial, self.capacity)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_filters": self.capacity,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
            }
        )
        return config


def _pair(value, name):
    if arguments.is_int(value):
        return (int(value), int(value))
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(arguments.is_int(v) for v in value)
    ):
        return tuple(int(v) for v in value)
    raise ValueError(
        f"`{name}` must be an int or a pair of ints. Received: {name}={value!r}"
    )
