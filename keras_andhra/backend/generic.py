"""Backends without a device choice or training (numpy, openvino)."""


def device_kind():
    """Returns "cpu": these backends compute on the host."""
    return "cpu"


def refresh_parameters(model):
    """Nothing to do: this backend keeps no registry of variables."""


class HeadTrainer:
    """These backends do not train: nothing to add."""


def num_replicas():
    """Returns 1: these backends run one replica."""
    return 1


def cross_replica_sum(values):
    """Returns `values`: with one replica there is nothing to sum."""
    return values


def outside_compilation(function):
    """Returns `function`: nothing here compiles a step."""
    return function
