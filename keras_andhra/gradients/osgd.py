import numbers

import keras

from keras_andhra.gradients import projection
from keras_andhra.gradients import surgery

_MODES = ("always", "conflicting")


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
    * `mode`: `"always"` (default) removes every component along an
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
        mode: `"always"` or `"conflicting"`.
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
        mode="always",
        epsilon=1e-20,
    ):
        super().__init__(granularity, epsilon)
        if mode not in _MODES:
            raise ValueError(
                f"`mode` must be one of {_MODES}. Received: mode={mode!r}"
            )
        if order is not None:
            if isinstance(order, (str, numbers.Integral)) or not all(
                isinstance(h, (str, numbers.Integral))
                and not isinstance(h, bool)
                for h in order
            ):
                raise TypeError(
                    "`order` must be None or a list of head names or "
                    f"indices, highest priority first. Received: {order!r}"
                )
            # NumPy integers become ints, for the config's JSON.
            order = [h if isinstance(h, str) else int(h) for h in order]
        self.order = order
        self.mode = mode

    def priority(self, context):
        return resolve_order(self.order, context.head_names)

    def coefficients(self, gram_matrix, heads, context):
        return surgery.gram_schmidt(
            gram_matrix, self.mode == "conflicting", self.epsilon
        )

    def get_config(self):
        config = super().get_config()
        config.update({"order": self.order, "mode": self.mode})
        return config


def resolve_order(order, head_names):
    """Head indices, highest priority first, from names or indices.

    Raises:
        ValueError: for an unknown head name, an index out of range or a
            head listed twice.
    """
    head_names = list(head_names)
    num_heads = len(head_names)
    if order is None:
        return list(range(num_heads))
    indices = []
    for head in order:
        if isinstance(head, str):
            if head not in head_names:
                raise ValueError(
                    f"Unknown head {head!r} in `order`. The model's heads "
                    f"are {head_names}. Received: order={list(order)}"
                )
            index = head_names.index(head)
        else:
            if not -num_heads <= head < num_heads:
                raise ValueError(
                    f"Head index {head} in `order` is out of range for "
                    f"{num_heads} heads. Received: order={list(order)}"
                )
            index = head % num_heads
        if index in indices:
            raise ValueError(
                f"Head {head!r} is listed twice in `order`. Received: "
                f"order={list(order)}"
            )
        indices.append(index)
    return indices + [h for h in range(num_heads) if h not in indices]
