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
HeadTrainer = _impl.HeadTrainer
refresh_parameters = _impl.refresh_parameters
num_replicas = _impl.num_replicas
cross_replica_sum = _impl.cross_replica_sum


def scale_loss_for_replicas(loss):
    """Divides a replica's loss by the number of replicas in sync.

    Under `tf.distribute` every replica computes the loss of its share of
    the batch and the optimizer sums the replicas' gradients; Keras's
    losses divide by the number of replicas so that the sum is the
    gradient of the whole batch's mean loss. The model reduces its head
    losses itself, so it divides here. One replica (and JAX, whose
    distribution API computes on the whole batch): unchanged.
    """
    replicas = num_replicas()
    if replicas == 1:
        return loss
    return loss / replicas


# Default execution of `BranchBlock`, per backend and device kind, chosen
# by measurement (`benchmarks/branch_speed.py`, table in
# `benchmarks/README.md`). "stacked" runs the branches of a level as one
# grouped/batched kernel per layer; "loop" runs one copy per branch. A
# number is a channel threshold: stacked while the widest layer of one
# copy has at most that many channels (small kernels are dominated by
# per-op overhead, which stacking removes; wide ones by the grouped
# kernel itself, which is slower than separate ones on these CPUs).
# A pair missing from the table was not measured and gets the loop.
BRANCH_EXECUTION = {
    ("tensorflow", "cpu"): "loop",
    ("jax", "cpu"): "loop",
    ("torch", "cpu"): 64,
}


def default_branch_execution(max_channels=None):
    """Returns the measured-faster `BranchBlock` execution here.

    Args:
        max_channels: The widest layer of one branch's copy (filters or
            units), for rules that depend on it. `None` if unknown.

    Returns:
        `"loop"` or `"stacked"`.
    """
    rule = BRANCH_EXECUTION.get((_BACKEND, device_kind()), "loop")
    if isinstance(rule, int):
        if max_channels is None or max_channels > rule:
            return "loop"
        return "stacked"
    return rule
