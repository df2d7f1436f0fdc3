"""Backends without a device choice or training (numpy, openvino)."""


def device_kind():
    """Returns "cpu": these backends compute on the host."""
    return "cpu"


class HeadTrainer:
    """These backends do not train: nothing to add."""
