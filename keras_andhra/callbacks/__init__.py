"""Callbacks for ANDHRA models."""

from keras_andhra.callbacks.best_head_checkpoint import (
    BestHeadCheckpoint as BestHeadCheckpoint,
)
