"""TensorFlow specifics: device kind and the per-head gradient step."""

import keras
import tensorflow as tf

# Keras keeps this backend's variables in no registry of its own.
from keras_andhra.backend.generic import (
    refresh_parameters as refresh_parameters,
)
from keras_andhra.gradients import representation


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


def _sum_over_replicas(gradient_lists):
    """All-reduces lists of gradients (with `None`s) in one collective."""
    flat = [g for grads in gradient_lists for g in grads if g is not None]
    if not flat or num_replicas() == 1:
        return gradient_lists
    reduced = iter(cross_replica_sum(flat))
    return [
        [None if g is None else next(reduced) for g in grads]
        for grads in gradient_lists
    ]


class HeadTrainer:
    """Per-head gradients in one compiled step, when an aggregator is set."""

    def train_step(self, data):
        if self.gradient_aggregator is None:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        scale = self.optimizer.scale_loss(tf.ones((), "float32"))
        step = self.optimizer.iterations
        replicas = num_replicas()
        if self.gradient_aggregator.needs_head_gradients:
            # Each head's gradient from its own (unstacked) output: the
            # tape walks only that head's path.
            with tf.GradientTape(persistent=True) as tape:
                leaves, head_losses, regularization = self.head_step_losses(
                    x, y, sample_weight
                )
                objectives = list(head_losses)
                if regularization is not None:
                    objectives.append(regularization)
                scaled = [
                    self.optimizer.scale_loss(o / replicas) for o in objectives
                ]
            per_objective = [tape.gradient(s, variables) for s in scaled]
            del tape
            # The aggregator must see the whole batch's gradients (OSGD on
            # N replicas is OSGD on the whole batch): sum them first. Every
            # replica then forms the same update, and the optimizer, which
            # sums the replicas' updates, gets it once from each.
            per_objective = _sum_over_replicas(per_objective)
            extra = None
            if regularization is not None:
                extra = per_objective.pop()
            gradients, diagnostics = self.aggregate_gradients(
                per_objective, extra, variables, scale, step
            )
            if replicas > 1:
                gradients = [g / replicas for g in gradients]
        else:
            probe = tf.zeros((representation.PROBE_SIZE,), "float32")
            with tf.GradientTape() as tape:
                tape.watch(probe)
                with self.split_surgery(probe, scale, step):
                    leaves, head_losses, regularization = self.head_step_losses(
                        x, y, sample_weight
                    )
                total = self._combine(tf.stack(head_losses), regularization)
                total = self.optimizer.scale_loss(total / replicas)
            *gradients, probe_gradient = tape.gradient(
                total, variables + [probe]
            )
            gradients = [
                tf.zeros_like(v) if g is None else g
                for g, v in zip(gradients, variables)
            ]
            diagnostics = self.surgery_diagnostics(probe_gradient)
        self.optimizer.apply(gradients, variables)
        return self.record_step(
            x,
            y,
            leaves,
            head_losses,
            sample_weight,
            regularization,
            diagnostics,
        )
