"""The residual blocks of the ABNet family, as the reference code has them.

Shared by `abnet` and `baseline_resnet`, so that every head path of an
ABNet is built by the same code as the baseline. Faithful to the reference
PyTorch code: convolutions without bias, batch norm with epsilon 1e-5 and
momentum 0.9 (PyTorch's 0.1), PyTorch's default initialisers, and a
symmetric one-pixel pad before each stride-2 3x3 convolution (Keras's
`padding="same"` pads only the bottom/right there, which shifts the
sampling grid by one pixel).
"""

import math

import keras

from keras_andhra.utils import arguments

NUM_STAGES = 4


def torch_kernel_initializer():
    """PyTorch's default `kaiming_uniform_(a=sqrt(5))` for conv and linear."""
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
    )


def activation_layer(activation, name):
    """The network's activation as a layer: ReLU, per-channel PReLU, ..."""
    if activation == "prelu":
        return keras.layers.PReLU(
            alpha_initializer=keras.initializers.Constant(0.25),
            shared_axes=[1, 2],
            name=name,
        )
    if activation == "relu":
        return keras.layers.ReLU(name=name)
    return keras.layers.Activation(activation, name=name)


def conv_bn(x, filters, kernel_size, strides, name):
    """Conv (no bias) then batch norm."""
    padding = "same"
    if strides > 1 and kernel_size == 1:
        # A strided 1x1 convolution is a subsample then a 1x1 convolution.
        # Written so because PyTorch 2.13 on CPU computes a wrong,
        # run-to-run different kernel gradient for strided 1x1 convolutions
        # of channels-last inputs (which Keras passes it).
        x = keras.layers.MaxPooling2D(
            pool_size=1, strides=strides, name=f"{name}_subsample"
        )(x)
        strides = 1
    elif strides > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=torch_kernel_initializer(),
        name=f"{name}_conv",
    )(x)
    return keras.layers.BatchNormalization(
        epsilon=1e-5, momentum=0.9, name=f"{name}_bn"
    )(x)


def identity_units(x, filters, residual_units, activation, name):
    """R identity units; an activation between units, none after the last."""
    for unit in range(residual_units):
        prefix = f"{name}_unit{unit + 1}"
        if unit > 0:
            x = activation_layer(activation, f"{prefix}_in_act")(x)
        y = conv_bn(x, filters, 3, 1, f"{prefix}_a")
        y = activation_layer(activation, f"{prefix}_act")(y)
        y = conv_bn(y, filters, 3, 1, f"{prefix}_b")
        x = keras.layers.Add(name=f"{prefix}_add")([y, x])
    return x


def projection_block(x, filters, activation, name):
    """Stride-2 residual block with a 1x1 projection shortcut."""
    y = conv_bn(x, filters, 3, 2, f"{name}_a")
    y = activation_layer(activation, f"{name}_act")(y)
    y = conv_bn(y, filters, 3, 1, f"{name}_b")
    shortcut = conv_bn(x, filters, 1, 2, f"{name}_shortcut")
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return activation_layer(activation, f"{name}_out_act")(y)


def stem(x, width, residual_units, activation):
    """Stage 1: conv3x3 + BN + activation, then R identity units."""
    x = conv_bn(x, width, 3, 1, "stem")
    x = activation_layer(activation, "stem_act")(x)
    return identity_units(x, width, residual_units, activation, "stem")


def stage(x, index, width, residual_units, activation):
    """Stage `index` (2..4): projection block then R identity units."""
    filters = width * 2 ** (index - 1)
    name = f"stage{index}"
    x = projection_block(x, filters, activation, f"{name}_proj")
    return identity_units(x, filters, residual_units, activation, name)


def classifier(x, num_classes, activation):
    """Activation, global average pooling and a dense head (logits).

    `activation=None` leaves the activation out (it is applied before).
    """
    if activation is not None:
        x = activation_layer(activation, "final_act")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    bound = 1.0 / math.sqrt(x.shape[-1])
    return keras.layers.Dense(
        num_classes,
        kernel_initializer=torch_kernel_initializer(),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        name="logits",
    )(x)


def validate(residual_units, num_classes, width, input_shape, activation):
    """Checks the arguments common to `abnet` and `baseline_resnet`."""
    for arg, value, minimum in (
        ("residual_units", residual_units, 0),
        ("num_classes", num_classes, 1),
        ("width", width, 1),
    ):
        if not arguments.is_int(value):
            raise TypeError(
                f"`{arg}` must be an int. Received: {arg}={value!r}"
            )
        if value < minimum:
            raise ValueError(
                f"`{arg}` must be at least {minimum}. Received: {arg}={value}"
            )
    shape = (
        tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    )
    if (
        shape is None
        or len(shape) != 3
        or not all(isinstance(d, int) and d > 0 for d in shape)
    ):
        raise ValueError(
            "`input_shape` must be (height, width, channels) of positive "
            "ints, one image without the batch axis, e.g. (32, 32, 3); add "
            "a channel axis to grayscale images. Received: "
            f"input_shape={input_shape!r}"
        )
    if activation != "prelu":
        try:
            keras.activations.get(activation)
        except (ValueError, TypeError):
            raise ValueError(
                f"Unknown activation {activation!r}. Use a Keras activation "
                f"name or 'prelu'. Received: activation={activation!r}"
            ) from None
    return shape
