import keras

from keras_andhra.gradients import gradient_aggregator


@keras.saving.register_keras_serializable(package="keras_andhra")
class Mean(gradient_aggregator.GradientAggregator):
    """Averages the heads' gradients: the update of the mean head loss.

    Heads that do not reach a variable count as zero, so this is the
    gradient of the mean of the head losses, and with the default
    `compile(head_reduction="mean")` it reproduces the plain training
    step's update.

    Example:

    ```python
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, input_shape=(8, 8, 1))
    model.compile(loss="mse")
    model.gradient_aggregator = ka.gradients.Mean()
    ```
    """

    def aggregate(self, head_gradients):
        num_heads = len(head_gradients)
        return [
            None if total is None else keras.ops.divide(total, num_heads)
            for total in (
                gradient_aggregator.sum_gradients(grads)
                for grads in self.by_variable(head_gradients)
            )
        ]
