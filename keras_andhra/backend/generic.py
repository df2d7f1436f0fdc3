"""Backends without a device choice (numpy, openvino)."""


def device_kind():
    """Returns "cpu": these backends compute on the host."""
    return "cpu"
