import keras
import numpy as np

from keras_andhra.gradients import OSGD
from keras_andhra.gradients import osgd as osgd_module
from keras_andhra.models import head_metrics
from keras_andhra.models import head_paths
from keras_andhra.utils import arguments


class OrthogonalGradients(keras.callbacks.Callback):
    """Trains with Orthogonalized SGD, in a priority order of the heads.

    During `fit`, the callback sets the model's gradient aggregator to
    `keras_andhra.gradients.OSGD` and rebuilds the train function, so the
    compiled step computes every head's gradient and orthogonalises them
    in priority order: the first head's gradient passes unchanged, and
    each later head moves the shared weights only in directions that do
    not interfere with the heads before it. A callback cannot touch
    gradients itself; it changes what the next traced step does. When
    `fit` ends the model's earlier aggregator (usually none) is restored.

    The priority `order`:

    * `None`: head order. For an anytime network whose heads are exits on
      one trunk, ordered by depth, that is the earliest exit first, as in
      the paper.
    * A list of head names (or indices): that order; heads left out follow
      in head order.
    * `"rank"`: the best head first, by a per-head metric in the epoch's
      logs (`monitor`, validation accuracy by default), re-ranked after
      every epoch. This protects the head you will ship. The train
      function is rebuilt (and retraced) only when the order changes.

    With `start_epoch`, the first epochs train as the model would without
    the callback (the plain path, the mean of the head losses, unless the
    model has an aggregator of its own) as a warm-up, and OSGD starts at
    that epoch.

    The logs gain `gradient_cosine` (the mean cosine between head
    gradients where they share variables; negative means conflict) and
    `gradient_projected` (the fraction of head pairs and variables where a
    component was removed).

    Args:
        order: `None`, a list of head names or indices, or `"rank"`.
        monitor: For `order="rank"`: the per-head metric, named as it
            would be without the head (`"val_accuracy"` reads
            `val_<head>_accuracy`).
        metric_mode: `"auto"`, `"max"` or `"min"`: whether a higher
            `monitor` value ranks higher (`"auto"`: lower for losses and
            error metrics such as `"val_mae"`, higher for the rest).
        granularity: Passed to `OSGD`: `"per_variable"`, `"global"` or
            `"representation"`.
        projection: Passed to `OSGD`: `"always"` or `"conflicting"`
            (formerly `mode`, which still works, with a deprecation
            warning).
        start_epoch: The (0-based) epoch OSGD starts at.

    Attributes:
        priority: The current order, head names highest first.
        history: The order used in every epoch (`None` for plain epochs).

    Example:

    ```python
    import keras
    import numpy as np
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, num_levels=1, input_shape=(8, 8, 1))
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = np.random.rand(64, 8, 8, 1)
    y = np.random.randint(0, 10, size=(64,))
    osgd = ka.callbacks.OrthogonalGradients(order="rank", start_epoch=1)
    model.fit(x, y, validation_split=0.25, epochs=3, callbacks=[osgd],
              verbose=0)
    osgd.history  # [None, [...], [...]]: plain first, then re-ranked
    ```

    Reference:
        Wan, Hoffmann, Lu and Maire, "Orthogonalized SGD and Nested
        Architectures for Anytime Neural Networks", ICML 2020,
        arXiv:2008.06635.
    """

    def __init__(
        self,
        order=None,
        monitor="val_accuracy",
        metric_mode="auto",
        granularity="per_variable",
        projection="always",
        start_epoch=0,
        mode=None,
    ):
        super().__init__()
        projection = arguments.renamed(
            "projection", projection, "mode", mode, "always"
        )
        if isinstance(order, str) and order != "rank":
            raise ValueError(
                "`order` must be None, a list of head names or indices, or "
                f"'rank'. Received: order={order!r}"
            )
        if metric_mode not in head_metrics.MODES:
            raise ValueError(
                f"`metric_mode` must be one of {head_metrics.MODES}. Received: "
                f"metric_mode={metric_mode!r}"
            )
        if not arguments.is_int(start_epoch) or start_epoch < 0:
            raise ValueError(
                "`start_epoch` must be a non-negative int. Received: "
                f"start_epoch={start_epoch!r}"
            )
        # Checks granularity, projection and the order's types now, not mid-fit.
        OSGD(
            order=None if order == "rank" else order,
            granularity=granularity,
            projection=projection,
        )
        self.order = order
        self.monitor = monitor
        self.metric_mode = metric_mode
        self.granularity = granularity
        self.projection = projection
        self.start_epoch = start_epoch

    def on_train_begin(self, logs=None):
        model = self.model
        if not hasattr(model, "gradient_aggregator") or not hasattr(
            model, "num_heads"
        ):
            raise TypeError(
                "OrthogonalGradients needs a keras_andhra AndhraModel (built "
                "with AndhraModel(inputs, outputs) or "
                "keras_andhra.models.abnet): it sets the model's gradient "
                f"aggregator. Received: a {type(model).__name__}."
            )
        self.head_names = head_paths.collector_of(model).head_names
        if len(self.head_names) < 2:
            raise ValueError(
                "OrthogonalGradients orthogonalises the gradients of "
                f"several heads; this model has one ({self.head_names[0]!r})."
            )
        fixed = None if self.order == "rank" else self.order
        indices = osgd_module.resolve_order(fixed, self.head_names)
        self.priority = [self.head_names[i] for i in indices]
        self._keys = head_metrics.head_keys(self.monitor, self.head_names)
        lower = head_metrics.lower_is_better(self.monitor, self.metric_mode)
        self._sign = 1.0 if lower else -1.0
        self._previous = model.gradient_aggregator
        self._installed = None
        self.history = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch < self.start_epoch:
            self.history.append(None)
            return
        if self._installed != self.priority:
            self.model.gradient_aggregator = OSGD(
                order=list(self.priority),
                granularity=self.granularity,
                projection=self.projection,
            )
            self.model.make_train_function(force=True)
            self._installed = list(self.priority)
        self.history.append(list(self.priority))

    def on_epoch_end(self, epoch, logs=None):
        if self.order != "rank":
            return
        values = head_metrics.read(
            logs,
            self._keys,
            "OrthogonalGradients",
            self.monitor,
            ", so the heads keep their order",
        )
        if values is None:
            return
        # Best first; ties keep head order; NaN (a diverged head) last.
        ranked = np.lexsort((np.arange(len(values)), self._sign * values))
        self.priority = [self.head_names[i] for i in ranked]

    def on_train_end(self, logs=None):
        if self._installed is not None:
            self.model.gradient_aggregator = self._previous
            self.model.make_train_function(force=True)
