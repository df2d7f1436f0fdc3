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
outside_compilation = _impl.outside_compilation


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
