"""Datasets: bundled offline sets, and CIFAR through tensorflow-datasets."""

from keras_andhra.data.cifar import load_cifar as load_cifar
from keras_andhra.data.digits import load_digits as load_digits
