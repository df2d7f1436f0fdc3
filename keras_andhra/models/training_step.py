"""The per-head training step: one home, in `keras.ops`, for every backend.

`AndhraModel` trains through Keras's own step unless a gradient
aggregator is set (OSGD, PCGrad, ...): then one step is

    forward to the heads' own outputs (before they are stacked)
    -> one loss per head (and the regularisation)
    -> the gradient of each (the backend's adapter differentiates)
    -> summed over replicas, routed to the aggregator
    -> one update per variable, and the logs,

and `HeadStep` is that step. The backend adapters
(`keras_andhra/backend/{tensorflow,jax,torch}.py`) are thin: each calls
`model.head_step(data, differentiate)` once per step with its own
`differentiate`, then applies the returned gradients with the optimizer,
as Keras's `backend/<name>/trainer.py` are adapters over `Model`.

The contract of `differentiate(objectives, count, probe=None)`:

* `objectives(probe)` runs the forward pass and returns `(values,
  outputs)`: `count` scalar tensors (or `None` for a term that is absent)
  and whatever the step needs afterwards;
* `differentiate` returns `(gradients, probe_gradient, outputs)`: for
  every value, the list of its gradients with respect to the model's
  trainable variables (`None` where a value is `None`, or a variable is
  unreached), the gradient of the first value with respect to `probe`
  (when given), and `outputs` from one evaluation.
"""

import typing

import keras
from keras import ops

from keras_andhra import backend
from keras_andhra.gradients import representation
from keras_andhra.models import gradient_routing


class StepOutputs(typing.NamedTuple):
    """The forward pass of one step: what the logs are made of.

    A named tuple, so that every backend's tracing sees through it (a
    JAX pytree, a TensorFlow nest).

    Attributes:
        leaves: The heads' outputs, unstacked (a list).
        head_losses: One scalar loss per head (a list).
        regularization: The regularisation loss, or `None`.

    Example:

    ```python
    import keras_andhra as ka

    class FromTheStack(ka.models.HeadStep):
        # Each head's loss from its slice of the stacked output.
        def forward(self, x, y, sample_weight=None):
            y_pred = self.model(x, training=True)
            leaves = [y_pred[:, k] for k in range(self.model.num_heads)]
            return ka.models.StepOutputs(
                leaves,
                self.model.per_head_losses(y, leaves, sample_weight),
                self.model.regularization_loss(),
            )
    ```
    """

    leaves: list
    head_losses: list
    regularization: object


class HeadStep:
    """The per-head training step of an `AndhraModel` with an aggregator.

    The model builds it when its `gradient_aggregator` is set and exposes
    it as `model.head_step`. Subclasses may override `forward` (how the
    heads' outputs and losses are computed); `AndhraModel.make_head_step`
    returns the step to use.

    Args:
        model: The `AndhraModel`.
        aggregator: Its `GradientAggregator`.

    Example:

    ```python
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, num_levels=1, input_shape=(8, 8, 1))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.gradient_aggregator = ka.gradients.OSGD()
    model.head_step.needs_head_gradients  # True: one gradient per head
    ```
    """

    def __init__(self, model, aggregator):
        self.model = model
        self.aggregator = aggregator
        self.routing = gradient_routing.GradientRouting(model, aggregator)
        #: The model from the input to the heads' own outputs, unstacked,
        #: sharing every layer (and variable) with the model. Made now,
        #: not inside a traced step: `torch.compile` cannot trace the
        #: construction of a Keras model.
        self.leaves_model = keras.Model(model.input, model.head_collector.input)

    @property
    def needs_head_gradients(self):
        """Whether the step takes one gradient per head (else one, with
        the surgery at the splits)."""
        return self.aggregator.needs_head_gradients

    def forward(self, x, y, sample_weight=None):
        """The training forward pass: `StepOutputs`, each head's loss from
        its own output, so that its gradient walks only its path."""
        leaves = list(self.leaves_model(x, training=True))
        head_losses = self.model.per_head_losses(y, leaves, sample_weight)
        return StepOutputs(
            leaves, head_losses, self.model.regularization_loss()
        )

    def __call__(self, data, differentiate):
        """Runs one step: returns `(gradients, logs)`.

        Args:
            data: The batch, `(x, y)` or `(x, y, sample_weight)`.
            differentiate: The backend's gradient function (module
                docstring).

        Returns:
            One gradient per trainable variable (still carrying the loss
            scale, for the optimizer to check and undo) and the logs.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        optimizer = self.model.optimizer
        scale = optimizer.scale_loss(ops.ones((), "float32"))
        iteration = optimizer.iterations
        if self.needs_head_gradients:
            gradients, outputs, diagnostics = self._per_head(
                x, y, sample_weight, differentiate, scale, iteration
            )
        else:
            gradients, outputs, diagnostics = self._at_splits(
                x, y, sample_weight, differentiate, scale, iteration
            )
        return gradients, self.record(x, y, sample_weight, outputs, diagnostics)

    def _objective(self, loss, scale):
        """A loss as the optimizer differentiates it: per replica, scaled."""
        if loss is None:
            return None
        return backend.scale_loss_for_replicas(loss) * ops.cast(
            scale, loss.dtype
        )

    def _per_head(self, x, y, sample_weight, differentiate, scale, iteration):
        def objectives(probe):
            outputs = self.forward(x, y, sample_weight)
            losses = outputs.head_losses + [outputs.regularization]
            return [self._objective(loss, scale) for loss in losses], outputs

        count = self.model.num_heads + 1
        per_objective, _, outputs = differentiate(objectives, count)
        # The aggregator must see the whole batch's gradients (OSGD on N
        # replicas is OSGD on the whole batch): sum them first.
        per_objective = _sum_over_replicas(per_objective)
        extra = per_objective.pop()
        # A compiled step leaves the surgery eager where the backend's
        # compiler would specialise it per variable shape (torch).
        aggregate = backend.outside_compilation(self.routing.aggregate)
        gradients, diagnostics = aggregate(
            per_objective, extra, scale, iteration
        )
        replicas = backend.num_replicas()
        if replicas > 1:
            # Every replica now forms the whole batch's update, and the
            # optimizer sums the replicas' updates.
            gradients = [g / replicas for g in gradients]
        return gradients, outputs, diagnostics

    def _at_splits(self, x, y, sample_weight, differentiate, scale, iteration):
        def objectives(probe):
            with self.routing.split_surgery(probe, scale, iteration):
                outputs = self.forward(x, y, sample_weight)
            total = self.model.combined_loss(
                ops.stack(outputs.head_losses), outputs.regularization
            )
            return [self._objective(total, scale)], outputs

        probe = ops.zeros((representation.PROBE_SIZE,), "float32")
        (gradients,), probe_gradient, outputs = differentiate(
            objectives, 1, probe
        )
        gradients = gradient_routing.fill_unreached(gradients, self.model)
        diagnostics = gradient_routing.surgery_diagnostics(probe_gradient)
        return gradients, outputs, diagnostics

    def record(self, x, y, sample_weight, outputs, diagnostics):
        """Updates the model's metrics from the step; returns the logs."""
        leaves = [ops.stop_gradient(leaf) for leaf in outputs.leaves]
        head_losses = ops.stack(
            [ops.stop_gradient(loss) for loss in outputs.head_losses]
        )
        regularization = outputs.regularization
        if regularization is not None:
            regularization = ops.stop_gradient(regularization)
        metrics = self.model.head_metrics
        batch_size = ops.shape(keras.tree.flatten(x)[0])[0]
        total = self.model.combined_loss(head_losses, regularization)
        metrics.update_losses(head_losses, total, batch_size)
        if diagnostics:
            metrics.update_gradients(
                {k: ops.stop_gradient(v) for k, v in diagnostics.items()}
            )
        y_pred = ops.stack(leaves, axis=1)
        return self.model.compute_metrics(x, y, y_pred, sample_weight)


def _sum_over_replicas(gradient_lists):
    """Sums lists of gradients (with `None`s) over replicas, one call."""
    flat = [
        g for grads in gradient_lists if grads for g in grads if g is not None
    ]
    if not flat or backend.num_replicas() == 1:
        return gradient_lists
    reduced = iter(backend.cross_replica_sum(flat))
    return [
        grads and [None if g is None else next(reduced) for g in grads]
        for grads in gradient_lists
    ]
