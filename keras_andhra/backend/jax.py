"""JAX: device kind, and the per-head step's adapter (stateless, jitted)."""

import jax
import keras

# JAX's distribution API computes on global arrays: one replica.
from keras_andhra.backend.generic import cross_replica_sum as cross_replica_sum
from keras_andhra.backend.generic import num_replicas as num_replicas

# Keras keeps this backend's variables in no registry of its own.
from keras_andhra.backend.generic import (
    outside_compilation as outside_compilation,
)
from keras_andhra.backend.generic import (
    refresh_parameters as refresh_parameters,
)


def device_kind():
    """Returns the platform JAX computes on: "cpu", "gpu" or "tpu"."""
    return jax.default_backend()


class HeadTrainer:
    """Runs `model.head_step` statelessly, with gradients from `jax.grad`.

    The step runs in a `StatelessScope` over the optimizer's and the
    metrics' state; the forward passes run in scopes of their own over the
    trainable values being differentiated. The step's gradients go to
    `optimizer.stateless_apply`, and the new state leaves as Keras's own
    JAX step returns it.
    """

    def train_step(self, state, data):
        step = self.head_step
        if step is None:
            return super().train_step(state, data)
        trainable, non_trainable, optimizer_state, metrics_state = state
        optimizer_mapping = list(zip(self.optimizer.variables, optimizer_state))
        differentiate = _Differentiate(
            self, trainable, non_trainable, optimizer_mapping
        )
        mapping = optimizer_mapping + list(
            zip(self.metrics_variables, metrics_state)
        )
        with keras.StatelessScope(state_mapping=mapping) as scope:
            gradients, logs = step(data, differentiate)
        metrics_state = [
            scope.get_current_value(v) for v in self.metrics_variables
        ]
        trainable, optimizer_state = self.optimizer.stateless_apply(
            optimizer_state, gradients, trainable
        )
        new_state = (
            trainable,
            differentiate.non_trainable,
            optimizer_state,
            metrics_state,
        )
        return logs, new_state


class _Differentiate:
    """`differentiate` for the step, over the step's trainable values.

    One `jax.grad` per objective, each of that objective's value alone:
    JAX's backward pass skips what a loss does not depend on (the other
    heads' branches), and XLA merges the identical forward passes. One
    vjp of all the losses, pulled back once per head, would run the whole
    network's backward pass each time (4.4x the plain step against 1.6x).
    """

    def __init__(self, model, trainable, non_trainable, optimizer_mapping):
        self.model = model
        self.trainable = trainable
        self.non_trainable = non_trainable
        self.mapping = optimizer_mapping + list(
            zip(model.non_trainable_variables, non_trainable)
        )
        self.absent = set()

    def _objective(self, values, index, probe, objectives):
        model = self.model
        mapping = list(zip(model.trainable_variables, values)) + self.mapping
        # collect_losses: layers' add_loss losses (size losses, activity
        # regularisers) are kept, as in Keras's own step.
        with keras.StatelessScope(
            state_mapping=mapping, collect_losses=True
        ) as scope:
            results, outputs = objectives(probe)
        updated = [
            scope.get_current_value(v) for v in model.non_trainable_variables
        ]
        value = results[index]
        if value is None:
            # Known while tracing: the gradient is reported as absent.
            self.absent.add(index)
            value = 0.0
        return value, (outputs, updated)

    def __call__(self, objectives, count, probe=None):
        if probe is not None:
            (gradients, probe_gradient), (outputs, updated) = jax.grad(
                self._objective, argnums=(0, 2), has_aux=True
            )(self.trainable, 0, probe, objectives)
            self.non_trainable = updated
            return [gradients], probe_gradient, outputs
        per_objective = []
        for index in range(count):
            gradients, (outputs, updated) = jax.grad(
                self._objective, has_aux=True
            )(self.trainable, index, None, objectives)
            per_objective.append(
                None if index in self.absent else list(gradients)
            )
        self.non_trainable = updated
        return per_objective, None, outputs
