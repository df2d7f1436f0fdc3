"""The one place where keras_andhra talks to TensorFlow, JAX or PyTorch.

The module for the active Keras backend is chosen once, at import, from
`keras.config.backend()` (the way Keras picks its Trainer). Everything
outside this package uses `keras.ops` and the public Keras API only.
"""

import keras

_BACKEND = keras.config.backend()

if _BACKEND == "tensorflow":
    from keras_andhra.backend import tensorflow as _impl
elif _BACKEND == "jax":
    from keras_andhra.backend import jax as _impl
elif _BACKEND == "torch":
    from keras_andhra.backend import torch as _impl
else:  # numpy, openvino: inference only, no device to choose for.
    from keras_andhra.backend import generic as _impl

device_kind = _impl.device_kind

# Default execution of `BranchBlock`, per backend and device kind, chosen
# by measurement (`benchmarks/branch_speed.py`, table in
# `benchmarks/README.md`). "stacked" runs the branches of a level as one
# grouped/batched kernel per layer; "loop" runs one copy per branch.
# A pair missing from the table was not measured and gets the reference
# loop.
BRANCH_EXECUTION = {
    ("tensorflow", "cpu"): "loop",
    ("jax", "cpu"): "loop",
    ("torch", "cpu"): "stacked",
}


def default_branch_execution():
    """Returns the measured-fastest `BranchBlock` execution here."""
    return BRANCH_EXECUTION.get((_BACKEND, device_kind()), "loop")
