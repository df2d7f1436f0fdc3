"""Model builders for ANDHRA Bandersnatch networks and their baseline."""

from keras_andhra.models.abnet import abnet as abnet
from keras_andhra.models.andhra_model import AndhraModel as AndhraModel
from keras_andhra.models.baseline_resnet import (
    baseline_resnet as baseline_resnet,
)
