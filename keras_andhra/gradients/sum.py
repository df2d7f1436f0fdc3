import keras

from keras_andhra.gradients import gradient_aggregator


@keras.saving.register_keras_serializable(package="keras_andhra")
class Sum(gradient_aggregator.GradientAggregator):
    """Adds the heads' gradients: the update of the summed head losses.

    With `compile(head_reduction="sum")` it reproduces, through the
    per-head gradient path, exactly the update of the plain training step.

    Example:

    ```python
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, input_shape=(8, 8, 1))
    model.compile(loss="mse", head_reduction="sum")
    model.gradient_aggregator = ka.gradients.Sum()
    ```
    """

    def aggregate(self, head_gradients):
        return [
            gradient_aggregator.sum_gradients(grads)
            for grads in self.by_variable(head_gradients)
        ]
