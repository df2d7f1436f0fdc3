"""Gradient aggregators: how the heads' gradients become one update."""

from keras_andhra.gradients.gradient_aggregator import (
    GradientAggregator as GradientAggregator,
)
from keras_andhra.gradients.mean import Mean as Mean
from keras_andhra.gradients.sum import Sum as Sum
