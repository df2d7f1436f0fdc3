"""PyTorch specifics: device kind and the per-head gradient step."""

import keras
import torch

# Keras runs PyTorch on one device.
from keras_andhra.backend.generic import cross_replica_sum as cross_replica_sum
from keras_andhra.backend.generic import num_replicas as num_replicas
from keras_andhra.gradients import representation


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
    """Per-head gradients in one step, when an aggregator is set."""

    def train_step(self, data):
        if self.gradient_aggregator is None:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        params = [v.value for v in variables]
        self.zero_grad()
        with torch.no_grad():
            scale = self.optimizer.scale_loss(torch.ones(()))
        step = self.optimizer.iterations
        if self.gradient_aggregator.needs_head_gradients:
            leaves, head_losses, regularization = self.head_step_losses(
                x, y, sample_weight
            )
            objectives = list(head_losses)
            if regularization is not None:
                objectives.append(regularization)
            # Each head's gradient from its own (unstacked) output:
            # autograd walks only that head's path.
            per_objective = [
                list(
                    torch.autograd.grad(
                        self.optimizer.scale_loss(objective),
                        params,
                        retain_graph=index < len(objectives) - 1,
                        allow_unused=True,
                    )
                )
                for index, objective in enumerate(objectives)
            ]
            extra = None
            if regularization is not None:
                extra = per_objective.pop()
            gradients, diagnostics = self.aggregate_gradients(
                per_objective, extra, params, scale, step
            )
        else:
            probe = torch.zeros(
                (representation.PROBE_SIZE,),
                dtype=torch.float32,
                device=params[0].device,
                requires_grad=True,
            )
            with self.split_surgery(probe, scale, step):
                leaves, head_losses, regularization = self.head_step_losses(
                    x, y, sample_weight
                )
            total = self._combine(torch.stack(head_losses), regularization)
            *gradients, probe_gradient = torch.autograd.grad(
                self.optimizer.scale_loss(total),
                params + [probe],
                allow_unused=True,
            )
            gradients = [
                torch.zeros_like(p) if g is None else g
                for g, p in zip(gradients, params)
            ]
            diagnostics = self.surgery_diagnostics(probe_gradient)
        with torch.no_grad():
            self.optimizer.apply(gradients, variables)
            return self.record_step(
                x,
                y,
                [leaf.detach() for leaf in leaves],
                [loss.detach() for loss in head_losses],
                sample_weight,
                None if regularization is None else regularization.detach(),
                {k: v.detach() for k, v in diagnostics.items()},
            )
