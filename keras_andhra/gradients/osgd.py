import keras

from keras_andhra.gradients import gram
from keras_andhra.gradients import projection
from keras_andhra.utils import arguments
from keras_andhra.utils import heads

_PROJECTIONS = ("always", "conflicting")


@keras.saving.register_keras_serializable(package="keras_andhra")
class OSGD(projection.ProjectingAggregator):
    """Orthogonalized SGD: later heads move only where earlier ones don't.

    The heads' gradients are Gram-Schmidt-orthogonalised in priority
    order: the first head's gradient passes unchanged, and every later
    head keeps only its component orthogonal to the (orthogonalised)
    gradients of the heads before it,

        u_1 = g_1
        u_k = g_k - sum_{j<k} <g_k, u_j> / (<u_j, u_j> + epsilon) u_j

    and the update is `sum_k w_k u_k`, with `w_k` the head's weight in the
    compiled loss (1 with `compile(head_reduction="sum")`: the paper's
    `sum_k u_k`; `1 / num_heads` with the default mean, so that switching
    OSGD on keeps the step size of the plain path). A head that does not
    reach a variable is skipped there, not projected; a variable that one
    head reaches gets that head's gradient as it is.

    What the paper leaves open, and the choices here (all options; the
    defaults are a reading of the paper, not confirmed by code, since none
    was published):

    * `granularity`: `"per_variable"` (default) orthogonalises each
      variable's gradients on their own; `"global"` takes the dot products
      over the whole parameter vector (it holds every head's gradient for
      every variable: memory of `num_heads` models); `"representation"`
      does the surgery on the gradients that arrive at every split point
      from its branches (each branch ranked by the best priority among the
      heads below it), inside the plain backward pass: no per-head
      gradients, about the cost of the plain step.
    * `projection`: `"always"` (default) removes every component along an
      earlier head's direction, as the abstract reads ("a parameter
      subspace that does not interfere"); `"conflicting"` removes only
      conflicting components, as PCGrad does: starting from `r = g_k`,
      for each earlier head `j` in priority order, if `<r, u_j> < 0`,
      `r -= <r, u_j> / (<u_j, u_j> + epsilon) u_j`; then `u_k = r`.
    * No rescaling of the projected gradients; momentum and weight decay
      act after the surgery (they belong to the optimizer).

    Args:
        order: Priority of the heads, highest first: `None` (head order,
            the earliest exit first in an anytime network), or a list of
            head names or indices. Heads left out follow in head order.
            `keras_andhra.callbacks.OrthogonalGradients` can re-rank the
            heads every epoch.
        granularity: `"per_variable"`, `"global"` or `"representation"`.
        projection: `"always"` or `"conflicting"` (formerly `mode`, which
            still works, with a deprecation warning).
        epsilon: Added to `<u_j, u_j>` against division by zero.

    Example:

    ```python
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, input_shape=(8, 8, 1))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.gradient_aggregator = ka.gradients.OSGD(order=["head_111"])
    ```

    Reference:
        Wan, Hoffmann, Lu and Maire, "Orthogonalized SGD and Nested
        Architectures for Anytime Neural Networks", ICML 2020,
        arXiv:2008.06635.
    """

    def __init__(
        self,
        order=None,
        granularity="per_variable",
        projection="always",
        epsilon=1e-20,
        mode=None,
    ):
        super().__init__(granularity, epsilon)
        projection = arguments.renamed(
            "projection", projection, "mode", mode, "always"
        )
        if projection not in _PROJECTIONS:
            raise ValueError(
                f"`projection` must be one of {_PROJECTIONS}. Received: "
                f"projection={projection!r}"
            )
        if order is not None:
            if (
                isinstance(order, str)
                or arguments.is_int(order)
                or not all(
                    isinstance(h, str) or arguments.is_int(h) for h in order
                )
            ):
                raise TypeError(
                    "`order` must be None or a list of head names or "
                    f"indices, highest priority first. Received: {order!r}"
                )
            # NumPy integers become ints, for the config's JSON.
            order = [h if isinstance(h, str) else int(h) for h in order]
        self.order = order
        self.projection = projection

    def priority(self, context):
        return resolve_order(self.order, context.head_names)

    def coefficients(self, gram_matrix, heads, context):
        return gram.gram_schmidt(
            gram_matrix, self.projection == "conflicting", self.epsilon
        )

    def get_config(self):
        config = super().get_config()
        config.update({"order": self.order, "projection": self.projection})
        return config


def resolve_order(order, head_names):
    """Head indices, highest priority first, from names or indices.

    Heads left out of `order` follow in head order.

    Raises:
        ValueError: for an unknown head name, an index out of range or a
            head listed twice.
    """
    head_names = list(head_names)
    indices = []
    if order:
        indices = heads.head_indices(order, head_names, argument="order")
    return indices + [h for h in range(len(head_names)) if h not in indices]
