"""Datasets: one `tf.data` pipeline for named sets, folders and arrays."""

from keras_andhra.data.augmentation import Augmentation as Augmentation
from keras_andhra.data.cifar import load_cifar as load_cifar
from keras_andhra.data.digits import load_digits as load_digits
from keras_andhra.data.image_data import ImageData as ImageData
from keras_andhra.data.load_dataset import load_dataset as load_dataset
from keras_andhra.data.sources import load_mnist_5000 as load_mnist_5000
