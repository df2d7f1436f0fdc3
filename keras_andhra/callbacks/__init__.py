"""Callbacks for ANDHRA models and size-gated layers."""

from keras_andhra.callbacks.best_head_checkpoint import (
    BestHeadCheckpoint as BestHeadCheckpoint,
)
from keras_andhra.callbacks.dynamic_growth import DynamicGrowth as DynamicGrowth
from keras_andhra.callbacks.orthogonal_gradients import (
    OrthogonalGradients as OrthogonalGradients,
)
