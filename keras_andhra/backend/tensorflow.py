"""TensorFlow specifics."""

import tensorflow as tf


def device_kind():
    """Returns "gpu" when TensorFlow sees a GPU, else "cpu"."""
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
