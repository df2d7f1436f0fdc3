"""keras_andhra: ANDHRA Bandersnatch multi-head networks for Keras 3.

The groups (`callbacks`, `data`, `evaluation`, `gradients`, `layers`,
`models`) are imported on first
use, so that `keras-andhra --backend jax` can choose the Keras backend
before anything imports Keras.
"""

import importlib

__version__ = "0.1.0"

_GROUPS = ("callbacks", "data", "evaluation", "gradients", "layers", "models")


def __getattr__(name):
    if name in _GROUPS:
        return importlib.import_module(f"keras_andhra.{name}")
    raise AttributeError(f"module 'keras_andhra' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_GROUPS))
