"""One metric per head, read from the epoch logs (shared by the callbacks).

A per-head metric is named as it would be without the head: `"val_accuracy"`
stands for `val_<head>_accuracy` of every head.
"""

import warnings

import numpy as np

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


def keys(monitor, head_names):
    """The log keys of `monitor` for every head, in head order."""
    prefix = "val_" if monitor.startswith("val_") else ""
    metric = monitor[len(prefix) :]
    return [f"{prefix}{head}_{metric}" for head in head_names]


def read(logs, head_keys, caller, monitor, consequence=""):
    """The heads' values as an array, or `None` (with a warning) if absent.

    Args:
        logs: The epoch's logs.
        head_keys: From `keys`.
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
