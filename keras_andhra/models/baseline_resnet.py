import keras

from keras_andhra.models import resnet_blocks


def baseline_resnet(
    residual_units=0,
    num_classes=10,
    width=64,
    input_shape=(32, 32, 3),
    activation="relu",
):
    """Builds the single-path baseline BS-1G-R{R} of the ABNet paper.

    The plain residual network every ABNet head is a copy of: a stem
    (conv3x3 + BN + activation) and three more stages of `2 * width`,
    `4 * width` and `8 * width` channels, each a stride-2 projection block
    followed by `residual_units` identity units, then activation, global
    average pooling and a dense layer of logits. Built from standard Keras
    layers only, exactly as the reference code builds it (convolutions
    without bias, batch-norm epsilon 1e-5, PyTorch initialisers).

    At width 64 on CIFAR-10 it has 4.83M / 11.10M / 17.37M / 23.64M
    parameters for `residual_units` 0 / 1 / 2 / 3 (counted from the
    reference code's architecture; the paper does not print them).

    Args:
        residual_units: Int >= 0, identity residual units after each
            stage's first block (the R of BS-1G-R{R}).
        num_classes: Int, the number of logits.
        width: Int, channels of the stem (64 in the paper).
        input_shape: `(height, width, channels)` of one image.
        activation: A Keras activation name or `"prelu"` (per-channel
            PReLU everywhere, the paper's PReLU variant).

    Returns:
        A functional `keras.Model` mapping images to logits
        `(batch, num_classes)`.

    Example:

    ```python
    import keras_andhra as ka

    model = ka.models.baseline_resnet(residual_units=0, width=16)
    model.count_params()
    ```

    Reference:
        Daliparthi, "ANDHRA Bandersnatch: Training Neural Networks to
        Predict Parallel Realities", arXiv:2411.19213 (2024).
    """
    input_shape = resnet_blocks.validate(
        residual_units, num_classes, width, input_shape, activation
    )
    inputs = keras.Input(input_shape, name="images")
    x = resnet_blocks.stem(inputs, width, residual_units, activation)
    for index in range(2, resnet_blocks.NUM_STAGES + 1):
        x = resnet_blocks.activation_layer(activation, f"act{index - 1}")(x)
        x = resnet_blocks.stage(x, index, width, residual_units, activation)
    outputs = resnet_blocks.classifier(x, num_classes, activation)
    return keras.Model(inputs, outputs, name=f"bs_1g_r{residual_units}")
