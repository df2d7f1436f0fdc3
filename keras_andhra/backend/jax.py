"""JAX specifics: device kind and the per-head gradient step."""

import jax
import jax.numpy as jnp
import keras


def device_kind():
    """Returns the platform JAX computes on: "cpu", "gpu" or "tpu"."""
    return jax.default_backend()


class HeadTrainer:
    """Per-head gradients in one jitted, stateless step."""

    def train_step(self, state, data):
        if self.gradient_aggregator is None:
            return super().train_step(state, data)
        trainable, non_trainable, optimizer_state, metrics_state = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        num_heads = self.num_heads

        def objectives(trainable_values):
            mapping = list(zip(self.trainable_variables, trainable_values))
            mapping += list(zip(self.non_trainable_variables, non_trainable))
            # The optimizer's variables too: loss scaling reads its scale.
            mapping += list(zip(self.optimizer.variables, optimizer_state))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                leaves, head_losses, regularization = self.head_step_losses(
                    x, y, sample_weight
                )
                losses = head_losses + (
                    [] if regularization is None else [regularization]
                )
                scaled = jnp.stack(
                    [self.optimizer.scale_loss(loss) for loss in losses]
                )
            updated = [
                scope.get_current_value(v) for v in self.non_trainable_variables
            ]
            return scaled, (leaves, head_losses, regularization, updated)

        # One forward pass; one backward pass per head (and one for the
        # regularisation), all inside the one jitted step.
        scaled, pullback, aux = jax.vjp(objectives, trainable, has_aux=True)
        leaves, head_losses, regularization, non_trainable = aux
        basis = jnp.eye(scaled.shape[0], dtype=scaled.dtype)
        per_objective = [pullback(row)[0] for row in basis]
        gradients = self.aggregate_gradients(
            per_objective[:num_heads],
            None if regularization is None else per_objective[num_heads],
            trainable,
        )
        trainable, optimizer_state = self.optimizer.stateless_apply(
            optimizer_state, gradients, trainable
        )
        mapping = list(zip(self.metrics_variables, metrics_state))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self.record_step(
                x, y, leaves, head_losses, sample_weight, regularization
            )
        metrics_state = [
            scope.get_current_value(v) for v in self.metrics_variables
        ]
        return logs, (trainable, non_trainable, optimizer_state, metrics_state)
