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


class HeadTrainer:
    """Per-head gradients in one compiled step, when an aggregator is set."""

    def train_step(self, data):
        if self.gradient_aggregator is None:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        scale = self.optimizer.scale_loss(tf.ones((), "float32"))
        step = self.optimizer.iterations
        if self.gradient_aggregator.needs_head_gradients:
            # Each head's gradient from its own (unstacked) output: the
            # tape walks only that head's path.
            with tf.GradientTape(persistent=True) as tape:
                leaves, head_losses, regularization = self.head_step_losses(
                    x, y, sample_weight
                )
                scaled = [self.optimizer.scale_loss(h) for h in head_losses]
                if regularization is not None:
                    scaled.append(self.optimizer.scale_loss(regularization))
            per_objective = [tape.gradient(s, variables) for s in scaled]
            del tape
            extra = None
            if regularization is not None:
                extra = per_objective.pop()
            gradients, diagnostics = self.aggregate_gradients(
                per_objective, extra, variables, scale, step
            )
        else:
            probe = tf.zeros((representation.PROBE_SIZE,), "float32")
            with tf.GradientTape() as tape:
                tape.watch(probe)
                with self.split_surgery(probe, scale, step):
                    leaves, head_losses, regularization = self.head_step_losses(
                        x, y, sample_weight
                    )
                total = self._combine(tf.stack(head_losses), regularization)
                total = self.optimizer.scale_loss(total)
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
