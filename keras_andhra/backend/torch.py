"""PyTorch specifics: device kind and the per-head gradient step."""

import keras
import torch


def device_kind():
    """Returns "gpu" when Keras places tensors on CUDA, else "cpu"."""
    return "gpu" if torch.cuda.is_available() else "cpu"


class HeadTrainer:
    """Per-head gradients in one step, when an aggregator is set."""

    def train_step(self, data):
        if self.gradient_aggregator is None:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        params = [v.value for v in variables]
        self.zero_grad()
        leaves, head_losses, regularization = self.head_step_losses(
            x, y, sample_weight
        )
        head_gradients = [
            list(
                torch.autograd.grad(
                    self.optimizer.scale_loss(loss),
                    params,
                    retain_graph=True,
                    allow_unused=True,
                )
            )
            for loss in head_losses
        ]
        extra = None
        if regularization is not None:
            extra = torch.autograd.grad(
                self.optimizer.scale_loss(regularization),
                params,
                allow_unused=True,
            )
        gradients = self.aggregate_gradients(head_gradients, extra, params)
        with torch.no_grad():
            self.optimizer.apply(gradients, variables)
        with torch.no_grad():
            return self.record_step(
                x,
                y,
                [leaf.detach() for leaf in leaves],
                [loss.detach() for loss in head_losses],
                sample_weight,
                None if regularization is None else regularization.detach(),
            )
