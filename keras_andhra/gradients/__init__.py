"""Gradient aggregators: how the heads' gradients become one update."""

from keras_andhra.gradients.gradient_aggregator import (
    GradientAggregator as GradientAggregator,
)
from keras_andhra.gradients.gradient_aggregator import (
    StepContext as StepContext,
)
from keras_andhra.gradients.mean import Mean as Mean
from keras_andhra.gradients.osgd import OSGD as OSGD
from keras_andhra.gradients.pcgrad import PCGrad as PCGrad
from keras_andhra.gradients.sum import Sum as Sum
