"""Per-head metrics and their log keys: the one home of both.

One `HeadMetrics` object keeps, for every head, the mean loss and every
compiled metric, plus the combined loss, the best head's accuracy and
the majority-vote ensemble's accuracy. Accuracy-type metrics are computed
for all heads at once from the stacked `(batch, num_heads, ...)`
predictions; any other Keras metric runs one instance per head.

The log keys: `loss`, `<head>_loss`, `<head>_<metric>`, `best_<metric>`,
`ensemble_<metric>`, the aggregators' `GRADIENT_KEYS`, and `val_` in front
during validation. The callbacks read per-head metrics back with
`head_keys` and `read`.
"""

import contextlib
import warnings

import keras
import numpy as np
from keras import ops

from keras_andhra.gradients.projection import DIAGNOSTIC_KEYS

#: The keys under which gradient aggregators report to the training logs:
#: the mean cosine between head gradients where they share variables, and
#: the fraction of (pair, variable) projections made.
GRADIENT_KEYS = DIAGNOSTIC_KEYS

_ACCURACY = (
    "accuracy",
    "acc",
    "sparse_categorical_accuracy",
    "categorical_accuracy",
)


class HeadMetrics(keras.metrics.Metric):
    """Loss and metrics of every head, the best head and the ensemble."""

    def __init__(self, head_names, metrics=(), name="head_metrics"):
        super().__init__(name=name)
        self.head_names = list(head_names)
        num_heads = len(self.head_names)
        self.loss_total = self.add_variable(
            shape=(num_heads,), initializer="zeros", name="loss_total"
        )
        self.loss_count = self.add_variable(
            shape=(), initializer="zeros", name="loss_count"
        )
        # The combined loss, a mean over examples as Keras's own `loss`.
        self.combined_total = self.add_variable(
            shape=(), initializer="zeros", name="combined_total"
        )
        self.combined_count = self.add_variable(
            shape=(), initializer="zeros", name="combined_count"
        )
        self.accuracy_names = []
        self.others = []
        for spec in metrics or ():
            if isinstance(spec, str) and spec in _ACCURACY:
                self.accuracy_names.append(spec)
                continue
            self.others.append(
                (
                    _metric_name(spec),
                    [_clone_metric(spec) for _ in self.head_names],
                )
            )
        self.gradient_total = self.add_variable(
            shape=(len(GRADIENT_KEYS),),
            initializer="zeros",
            name="gradient_total",
        )
        self.gradient_count = self.add_variable(
            shape=(), initializer="zeros", name="gradient_count"
        )
        #: The gradient diagnostics' keys to show (the model sets them when
        #: its aggregator reports diagnostics); hidden during evaluation.
        self.gradient_keys = ()
        self._hide_gradients = False
        self._own = [
            self.loss_total,
            self.loss_count,
            self.combined_total,
            self.combined_count,
            self.gradient_total,
            self.gradient_count,
        ]
        if self.accuracy_names:
            self.correct = self.add_variable(
                shape=(num_heads,), initializer="zeros", name="correct"
            )
            self.ensemble_correct = self.add_variable(
                shape=(), initializer="zeros", name="ensemble_correct"
            )
            self.count = self.add_variable(
                shape=(), initializer="zeros", name="count"
            )
            self._own += [self.correct, self.ensemble_correct, self.count]

    @property
    def variables(self):
        variables = list(self._own)
        for _, per_head in self.others:
            for metric in per_head:
                variables.extend(metric.variables)
        return variables

    def update_losses(self, head_losses, total, batch_size):
        """Adds one batch's head losses `(num_heads,)` and combined loss.

        The combined loss is the `loss` of the logs, weighted by the
        batch's size as Keras weighs its own.
        """
        self.loss_total.assign_add(ops.cast(head_losses, self.dtype))
        self.loss_count.assign_add(ops.cast(1, self.dtype))
        size = ops.cast(batch_size, self.dtype)
        self.combined_total.assign_add(ops.cast(total, self.dtype) * size)
        self.combined_count.assign_add(size)

    def update_gradients(self, diagnostics):
        """Adds one step's gradient diagnostics (a dict of scalars)."""
        values = [
            ops.cast(diagnostics.get(key, 0.0), self.dtype)
            for key in GRADIENT_KEYS
        ]
        self.gradient_total.assign_add(ops.stack(values))
        self.gradient_count.assign_add(ops.cast(1, self.dtype))

    @contextlib.contextmanager
    def hiding_gradients(self):
        """Context in which `result` leaves out the gradient diagnostics.

        Evaluation computes no gradients. Training shows them in the step
        logs and in `Model.get_metrics_result()` alike: Keras takes the
        epoch's logs from the latter when the keys agree (under
        `tf.distribute` the step logs are averages of the replicas').
        """
        hidden = self._hide_gradients
        self._hide_gradients = True
        try:
            yield
        finally:
            self._hide_gradients = hidden

    def update_state(self, y_true, y_pred, sample_weight=None, sparse=True):
        """Updates from labels and predictions, both with a head axis."""
        if self.accuracy_names:
            self._update_accuracy(y_true, y_pred, sample_weight, sparse)
        for _, per_head in self.others:
            for index, metric in enumerate(per_head):
                metric.update_state(
                    y_true[:, index], y_pred[:, index], sample_weight
                )

    def _update_accuracy(self, y_true, y_pred, sample_weight, sparse):
        num_classes = y_pred.shape[-1]
        labels = y_true if sparse else ops.argmax(y_true, axis=-1)
        labels = ops.cast(labels, "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        hits = ops.cast(ops.equal(predicted, labels), self.dtype)
        # Majority vote; ties go to the smallest class (argmax takes the
        # first maximum), as in the reference code.
        votes = ops.sum(ops.one_hot(predicted, num_classes), axis=1)
        winner = ops.cast(ops.argmax(votes, axis=-1), "int32")
        ensemble = ops.cast(ops.equal(winner, labels[:, 0]), self.dtype)
        hits = ops.reshape(hits, (ops.shape(hits)[0], hits.shape[1], -1))
        ensemble = ops.reshape(ensemble, (ops.shape(ensemble)[0], -1))
        weights = ops.ones_like(ensemble)
        if sample_weight is not None:
            weights = weights * ops.reshape(
                ops.cast(sample_weight, self.dtype), (-1, 1)
            )
        self.correct.assign_add(
            ops.sum(hits * ops.expand_dims(weights, 1), axis=(0, 2))
        )
        self.ensemble_correct.assign_add(ops.sum(ensemble * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        results = {
            "loss": ops.divide_no_nan(self.combined_total, self.combined_count)
        }
        losses = self.loss_total / ops.maximum(self.loss_count, 1.0)
        for index, head in enumerate(self.head_names):
            results[f"{head}_loss"] = losses[index]
        if self.accuracy_names:
            count = ops.maximum(self.count, 1.0)
            accuracy = self.correct / count
            for name in self.accuracy_names:
                for index, head in enumerate(self.head_names):
                    results[f"{head}_{name}"] = accuracy[index]
                results[f"best_{name}"] = ops.max(accuracy)
                results[f"ensemble_{name}"] = self.ensemble_correct / count
        for name, per_head in self.others:
            for head, metric in zip(self.head_names, per_head):
                results[f"{head}_{name}"] = metric.result()
        if self.gradient_keys and not self._hide_gradients:
            means = self.gradient_total / ops.maximum(self.gradient_count, 1)
            for index, key in enumerate(GRADIENT_KEYS):
                if key in self.gradient_keys:
                    results[key] = means[index]
        return results

    def reset_state(self):
        for variable in self._own:
            variable.assign(ops.zeros(variable.shape, variable.dtype))
        for _, per_head in self.others:
            for metric in per_head:
                metric.reset_state()


def _metric_name(spec):
    if isinstance(spec, str):
        return spec
    if isinstance(spec, keras.metrics.Metric):
        return spec.name
    return getattr(spec, "__name__", "metric")


def _clone_metric(spec):
    if isinstance(spec, keras.metrics.Metric):
        return spec.__class__.from_config(spec.get_config())
    function = keras.metrics.get(spec)
    if isinstance(function, keras.metrics.Metric):
        return function.__class__.from_config(function.get_config())
    return keras.metrics.MeanMetricWrapper(function, name=_metric_name(spec))


# Reading per-head metrics back from the logs (the callbacks). A per-head
# metric is named as it would be without the head: `"val_accuracy"`
# stands for `val_<head>_accuracy` of every head.

MODES = ("auto", "min", "max")

# Besides names with "loss": metrics that are errors, so lower is better.
_ERRORS = (
    "loss",
    "error",
    "crossentropy",
    "hinge",
    "divergence",
    "poisson",
    "logcosh",
    "mae",
    "mse",
    "mape",
    "msle",
)


def lower_is_better(monitor, mode):
    """Whether a lower `monitor` value is better under `mode`.

    `"auto"` reads the name: losses and error metrics (`"val_loss"`,
    `"val_mae"`, `"mean_squared_error"`, ...) are minimised, the rest
    (accuracy, AUC, ...) maximised.
    """
    if mode == "auto":
        return any(word in monitor for word in _ERRORS)
    return mode == "min"


def head_keys(monitor, head_names):
    """The log keys of `monitor` for every head, in head order."""
    prefix = "val_" if monitor.startswith("val_") else ""
    metric = monitor[len(prefix) :]
    return [f"{prefix}{head}_{metric}" for head in head_names]


def read(logs, head_keys, caller, monitor, consequence=""):
    """The heads' values as an array, or `None` (with a warning) if absent.

    Args:
        logs: The epoch's logs.
        head_keys: From `head_keys`.
        caller: The callback's name, to start the warning with.
        monitor: The metric as the user named it.
        consequence: What the caller does instead, for the warning
            (e.g. `", so the heads keep their order"`).
    """
    missing = [key for key in head_keys if key not in (logs or {})]
    if missing:
        warnings.warn(
            f"{caller}: the per-head metric {missing[0]!r} (for "
            f"monitor={monitor!r}) is not in the logs{consequence}. "
            f"Available metrics are: {', '.join(sorted(logs or {}))}.",
            stacklevel=3,
        )
        return None
    return np.array([float(logs[key]) for key in head_keys])
