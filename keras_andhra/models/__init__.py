"""Model builders for ANDHRA networks, their baseline, and model growth."""

from keras_andhra.growth import prune_to_active as prune_to_active
from keras_andhra.growth import widen_layer as widen_layer
from keras_andhra.models.abnet import abnet as abnet
from keras_andhra.models.andhra_model import AndhraModel as AndhraModel
from keras_andhra.models.baseline_resnet import (
    baseline_resnet as baseline_resnet,
)
from keras_andhra.models.training_step import HeadStep as HeadStep
from keras_andhra.models.training_step import StepOutputs as StepOutputs
