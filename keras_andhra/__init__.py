"""keras_andhra: ANDHRA Bandersnatch multi-head networks for Keras 3."""

from keras_andhra import data as data
from keras_andhra import gradients as gradients
from keras_andhra import layers as layers
from keras_andhra import models as models

__version__ = "0.1.0"
