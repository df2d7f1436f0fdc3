"""Datasets that work offline, for examples, tests and the main job."""

from keras_andhra.data.digits import load_digits as load_digits
