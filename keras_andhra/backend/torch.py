"""PyTorch specifics."""

import torch


def device_kind():
    """Returns "gpu" when Keras places tensors on CUDA, else "cpu"."""
    return "gpu" if torch.cuda.is_available() else "cpu"
