"""TensorFlow specifics: device kind and the per-head gradient step."""

import keras
import tensorflow as tf


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
        with tf.GradientTape(persistent=True) as tape:
            leaves, head_losses, regularization = self.head_step_losses(
                x, y, sample_weight
            )
            scaled = [self.optimizer.scale_loss(loss) for loss in head_losses]
        head_gradients = [tape.gradient(loss, variables) for loss in scaled]
        extra = None
        if regularization is not None:
            extra = tape.gradient(
                self.optimizer.scale_loss(regularization), variables
            )
        del tape
        gradients = self.aggregate_gradients(head_gradients, extra, variables)
        self.optimizer.apply(gradients, variables)
        return self.record_step(
            x, y, leaves, head_losses, sample_weight, regularization
        )
