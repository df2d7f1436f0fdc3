"""TensorFlow: device kind, replicas, and the per-head step's adapter."""

import tensorflow as tf

# Keras keeps this backend's variables in no registry of its own.
from keras_andhra.backend.generic import (
    outside_compilation as outside_compilation,
)
from keras_andhra.backend.generic import (
    refresh_parameters as refresh_parameters,
)


def device_kind():
    """Returns "gpu" when TensorFlow sees a GPU, else "cpu"."""
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def num_replicas():
    """The number of replicas of the `tf.distribute` strategy in scope."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def cross_replica_sum(values):
    """Sums a tensor (or a flat list of them) over the replicas in sync.

    Outside a replica context, or with one replica, returns `values`.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


class HeadTrainer:
    """Runs `model.head_step` with gradients from a `tf.GradientTape`."""

    def train_step(self, data):
        step = self.head_step
        if step is None:
            return super().train_step(data)
        gradients, logs = step(data, self._differentiate)
        self.optimizer.apply(gradients, self.trainable_variables)
        return logs

    def _differentiate(self, objectives, count, probe=None):
        # One tape for every objective: each head's loss comes from its
        # own (unstacked) output, so each gradient walks that head's path.
        with tf.GradientTape(persistent=count > 1) as tape:
            if probe is not None:
                tape.watch(probe)
            values, outputs = objectives(probe)
        sources = list(self.trainable_variables)
        if probe is not None:
            sources.append(probe)
        gradients = [
            None if value is None else tape.gradient(value, sources)
            for value in values
        ]
        del tape
        probe_gradient = None
        if probe is not None:
            probe_gradient = gradients[0].pop()
        return gradients, probe_gradient, outputs
