"""PyTorch: device kind, parameter registry, the per-head step's adapter."""

import keras
import torch

# Keras runs PyTorch on one device.
from keras_andhra.backend.generic import cross_replica_sum as cross_replica_sum
from keras_andhra.backend.generic import num_replicas as num_replicas


def outside_compilation(function):
    """Runs `function` eagerly inside a `torch.compile`d step.

    Gradient surgery works on one tensor per variable, and its shapes
    change from variable to variable (the heads that reach each one);
    Dynamo compiles it again for every shape (compiling an OSGD step took
    twice as long as with the surgery left eager). Outside
    `jit_compile=True` this changes nothing.
    """
    return torch.compiler.disable(function)


def device_kind():
    """Returns "gpu" when Keras places tensors on CUDA, else "cpu"."""
    return "gpu" if torch.cuda.is_available() else "cpu"


def refresh_parameters(model):
    """Re-registers the variables of `model` and every layer in it.

    Keras on PyTorch registers a layer's variables (its own and those of
    the layers in it) as `torch.nn.Parameter`s when it builds. A layer
    rebuilt in place (growth) updates only its own registry; the model
    and the layers around it would keep listing the old tensors in
    `parameters()` and `state_dict()`, and keep them alive.

    Fence: Keras has no public way to rebuild that registry; this is the
    one place that uses `_torch_params` and `_track_variables`.
    tests/compat_test.py fails loudly, naming this function, if Keras
    changes them.
    """
    # Torch's module tree, which reaches what Keras's layer tree does not
    # list (a Sequential's inner functional model).
    layers = [
        module
        for module in model.modules()
        if isinstance(module, keras.layers.Layer)
        and hasattr(module, "_torch_params")
    ]
    for layer in layers:
        del layer._torch_params
        layer._track_variables()


class HeadTrainer:
    """Runs `model.head_step` with gradients from `torch.autograd`."""

    def train_step(self, data):
        step = self.head_step
        if step is None:
            return super().train_step(data)
        self.zero_grad()
        gradients, logs = step(data, self._differentiate)
        with torch.no_grad():
            self.optimizer.apply(gradients, self.trainable_variables)
        return logs

    def _differentiate(self, objectives, count, probe=None):
        params = [v.value for v in self.trainable_variables]
        if probe is not None:
            probe.requires_grad_(True)
            params.append(probe)
        values, outputs = objectives(probe)
        live = [i for i, value in enumerate(values) if value is not None]
        gradients = [None] * len(values)
        for k, i in enumerate(live):
            # Each head's loss comes from its own (unstacked) output:
            # autograd walks only that head's path.
            gradients[i] = list(
                torch.autograd.grad(
                    values[i],
                    params,
                    retain_graph=k < len(live) - 1,
                    allow_unused=True,
                )
            )
        probe_gradient = None
        if probe is not None:
            probe_gradient = gradients[0].pop()
        return gradients, probe_gradient, outputs
