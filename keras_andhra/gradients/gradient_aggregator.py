import keras


class GradientAggregator:
    """Base class: turns per-head gradients into one gradient per variable.

    `AndhraModel` calls its aggregator inside the compiled training step
    (when `model.gradient_aggregator` is set) with the gradient of every
    head's own loss with respect to every trainable variable. A head whose
    path does not reach a variable (a variable of another branch) gives
    `None` there where the backend can tell (TensorFlow and PyTorch with
    the loop execution), and exact zeros otherwise.
    Subclasses implement `aggregate` with `keras.ops` only, so that the
    same code runs, compiled, on every backend.

    Example:

    ```python
    import keras_andhra as ka

    class FirstHeadFirst(ka.gradients.GradientAggregator):
        # Head 0's gradient where it has one, else the mean.

        def aggregate(self, head_gradients):
            mean = ka.gradients.Mean()(head_gradients)
            return [
                first if first is not None else fallback
                for first, fallback in zip(head_gradients[0], mean)
            ]
    ```
    """

    def __call__(self, head_gradients):
        return self.aggregate(head_gradients)

    def aggregate(self, head_gradients):
        """Combines the heads' gradients.

        Args:
            head_gradients: A list with one entry per head, each a list with
                one gradient (or `None`) per trainable variable.

        Returns:
            A list with one gradient (or `None`) per trainable variable.
        """
        raise NotImplementedError

    @staticmethod
    def by_variable(head_gradients):
        """Regroups per-head lists as per-variable lists, dropping `None`s."""
        return [
            [g for g in grads if g is not None]
            for grads in zip(*head_gradients)
        ]

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def sum_gradients(grads):
    """Sums a list of tensors (None for an empty list)."""
    if not grads:
        return None
    total = grads[0]
    for g in grads[1:]:
        total = keras.ops.add(total, g)
    return total
