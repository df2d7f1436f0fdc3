import keras
from keras import ops

from keras_andhra.gradients import gram
from keras_andhra.gradients import projection
from keras_andhra.utils import arguments


@keras.saving.register_keras_serializable(package="keras_andhra")
class PCGrad(projection.ProjectingAggregator):
    """PCGrad: each head's gradient loses the parts that conflict.

    Gradient surgery for multi-task learning: every head's gradient `g_i`
    is projected, one other head at a time in a random order, onto the
    normal plane of each other head's gradient `g_j` it conflicts with
    (`<g_i', g_j> < 0`); non-conflicting pairs are left alone. The update
    is `sum_i w_i g_i'`, with `w_i` the head's weight in the compiled loss
    (so `compile(head_reduction="sum")` gives the paper's sum).

    As in the official code, one random order per step is shared by all
    heads; it is drawn from the step number and `seed` without random
    state, so a jitted step needs none. The original projects over the
    whole parameter vector (`granularity="global"`, the default here);
    `"per_variable"` projects each variable on its own, and
    `"representation"` works on the gradients arriving at every split
    point, inside the plain backward pass. A head that does not reach a
    variable is skipped there.

    Args:
        granularity: `"global"`, `"per_variable"` or `"representation"`.
        seed: Int seed of the per-step orders.
        epsilon: Added to `<g_j, g_j>` against division by zero.

    Example:

    ```python
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, input_shape=(8, 8, 1))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.gradient_aggregator = ka.gradients.PCGrad()
    ```

    Reference:
        Yu, Kumar, Gupta, Levine, Hausman and Finn, "Gradient Surgery for
        Multi-Task Learning", NeurIPS 2020, arXiv:2001.06782.
    """

    def __init__(self, granularity="global", seed=0, epsilon=1e-20):
        super().__init__(granularity, epsilon)
        if not arguments.is_int(seed):
            raise TypeError(f"`seed` must be an int. Received: seed={seed!r}")
        self.seed = seed

    def order(self, step, heads):
        """The step's random order of `heads` (positions into `heads`)."""
        keys = gram.permutation_keys(
            step, max(heads) + 1 if heads else 0, self.seed
        )
        keys = ops.take(keys, ops.convert_to_tensor(heads, "int32"))
        return ops.cast(ops.argsort(keys), "int32")

    def coefficients(self, gram_matrix, heads, context):
        return gram.pcgrad(
            gram_matrix, self.order(context.step, list(heads)), self.epsilon
        )

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
