"""Callbacks for ANDHRA models."""

from keras_andhra.callbacks.best_head_checkpoint import (
    BestHeadCheckpoint as BestHeadCheckpoint,
)
from keras_andhra.callbacks.orthogonal_gradients import (
    OrthogonalGradients as OrthogonalGradients,
)
