import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class StepContext:
    """What the training step tells an aggregator about the model.

    Attributes:
        head_names: The model's head names, in head order.
        head_weights: The weight of every head in the compiled loss
            (`1 / num_heads` each with the default
            `compile(head_reduction="mean")`, 1 with `"sum"`, or the
            compiled `head_weights`).
        step: The optimizer's iteration counter (a scalar tensor), for
            aggregators that change from step to step.

    Example:

    ```python
    import numpy as np
    import keras_andhra as ka

    # Two heads, one variable: what the training step hands over.
    gradients = [[np.array([1.0, 0.0])], [np.array([1.0, 1.0])]]
    context = ka.gradients.StepContext(
        head_names=("head_0", "head_1"), head_weights=(0.5, 0.5)
    )
    update, logs = ka.gradients.OSGD().combine(gradients, context)
    # head_1 keeps only [0, 1]: update = 0.5 * [1, 0] + 0.5 * [0, 1]
    ```
    """

    head_names: tuple
    head_weights: tuple
    step: object = 0

    @classmethod
    def default(cls, num_heads):
        """A context for `num_heads` unnamed heads of weight 1, step 0."""
        return cls(
            head_names=tuple(f"head_{i}" for i in range(num_heads)),
            head_weights=(1.0,) * num_heads,
        )


class GradientAggregator:
    """Base class: turns per-head gradients into one gradient per variable.

    `AndhraModel` calls its aggregator inside the compiled training step
    (when `model.gradient_aggregator` is set) with the gradient of every
    head's own loss with respect to every trainable variable. A head whose
    path does not reach a variable (a variable of another branch) gives
    `None` there: the model knows from its graph which heads reach which
    variable, on every backend and branch execution, so the exact zeros
    of unreached variables never enter the arithmetic.

    Subclasses implement `aggregate` with `keras.ops` only, so that the
    same code runs, compiled, on every backend. The training step calls
    `combine`, which by default calls `aggregate`; override `combine`
    instead to use the `StepContext` (head weights, head names, the step
    number) or to report diagnostics to the logs.

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

    #: Whether the training step must compute every head's gradient. An
    #: aggregator that works elsewhere (at the split points) sets False.
    needs_head_gradients = True

    #: The keys `combine` adds to the training logs.
    diagnostic_keys = ()

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

    def combine(self, head_gradients, context):
        """What the training step calls: gradients and diagnostics.

        Args:
            head_gradients: As for `aggregate`.
            context: A `StepContext`.

        Returns:
            `(gradients, diagnostics)`: one gradient (or `None`) per
            trainable variable, and a dict of scalar tensors for the logs
            (keys from `diagnostic_keys`).
        """
        return self.aggregate(head_gradients), {}

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
