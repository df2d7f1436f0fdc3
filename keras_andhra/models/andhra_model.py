import contextlib
import dataclasses
import inspect

import keras
from keras import ops

from keras_andhra import backend
from keras_andhra.gradients import GradientAggregator
from keras_andhra.layers import AndhraSplit
from keras_andhra.layers import BranchBlock
from keras_andhra.layers import HeadCollector
from keras_andhra.models import head_losses
from keras_andhra.models import head_metrics
from keras_andhra.models import training_step
from keras_andhra.utils import arguments

_FIT_SIGNATURE = inspect.signature(keras.Model.fit)


@dataclasses.dataclass
class _Compiled:
    """What `AndhraModel.compile` sets up, in one plain object.

    Kept out of Keras's attribute tracking, which would list the metrics
    of every compile forever; the model lists the current metrics itself,
    as Keras lists its own compiled metrics.
    """

    loss: head_losses.HeadLoss
    metrics: head_metrics.HeadMetrics
    config: dict


@keras.saving.register_keras_serializable(package="keras_andhra")
class AndhraModel(backend.HeadTrainer, keras.Model):
    """A Keras model whose output is a stack of heads, trained jointly.

    Build it like a functional model whose output comes from a
    `HeadCollector`: `AndhraModel(inputs, outputs)`; `abnet(...)` returns
    one. Then `compile` and `fit` as usual. The model applies one ordinary
    Keras loss to every head and trains on the mean of the head losses (the
    reference code's choice; `head_reduction="sum"` and `head_weights` are
    options). Labels are given once, `fit(x, y)`, and apply to every head;
    per-head labels with a head axis work too.

    The head losses are computed vectorised: the heads are folded into the
    batch axis and the loss runs once. Regularisation losses are added
    once. The logs hold, under keys that are the same on every backend:

    * `loss`: the combined loss;
    * `<head>_loss` for every head, and `<head>_<metric>` for every
      compiled metric (`head_011_accuracy`);
    * for accuracy metrics, `best_<metric>` (the best head's value) and
      `ensemble_<metric>` (the majority vote of the heads; ties go to the
      smallest class);
    * the same with `val_` in front during `fit` with validation data,

    so `EarlyStopping(monitor="val_best_accuracy", mode="max")` and
    `ModelCheckpoint` work as usual.

    Gradient aggregation: set `model.gradient_aggregator` (for example
    `keras_andhra.gradients.Mean()`) and the training step computes every
    head's gradient inside the one compiled step, each from that head's own
    output before the heads are stacked, hands them to the aggregator and
    applies its result: the per-head step, `model.head_step` (a
    `keras_andhra.models.HeadStep`, which each backend runs).
    Set it before `fit` (a callback that changes it mid-fit rebuilds the
    train function with `model.make_train_function(force=True)`).

    Example:

    ```python
    import keras
    import numpy as np
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, num_levels=1, input_shape=(8, 8, 1))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = np.random.rand(32, 8, 8, 1)
    y = np.random.randint(0, 10, size=(32,))
    history = model.fit(x, y, epochs=1, verbose=0)
    sorted(history.history)[:3]
    ```
    """

    _compiled_heads = None
    _gradient_aggregator = None
    _head_step = None

    @property
    def head_collector(self):
        """The `HeadCollector` layer whose output is the model's output."""
        for layer in reversed(self.layers):
            if isinstance(layer, HeadCollector):
                return layer
        raise ValueError(
            "An AndhraModel needs a `HeadCollector` layer making its output; "
            "end the network with `keras_andhra.layers.HeadCollector()`."
        )

    @property
    def head_names(self):
        """Names of the heads, in the order of the output's head axis."""
        return self.head_collector.head_names

    @property
    def num_heads(self):
        """The number of heads."""
        return self.head_collector.num_heads

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        metrics=None,
        head_reduction="mean",
        head_weights=None,
        head_labels="auto",
        **kwargs,
    ):
        """Configures the model for training.

        Args:
            optimizer: As in `keras.Model.compile`.
            loss: One Keras loss (name, function or `keras.losses.Loss`),
                applied to every head; each head's loss is reduced by the
                loss's `reduction`, as Keras would reduce it alone.
            metrics: List of Keras metrics, each computed per head.
            head_reduction: `"mean"` (default) or `"sum"` of the head
                losses.
            head_weights: Optional list of one float per head; the combined
                loss is then the weighted sum of the head losses.
            head_labels: `"auto"` (default), `"shared"` (labels without a
                head axis, given to every head) or `"per_head"` (labels with
                a head axis at position 1). `"auto"` decides from the
                shapes and asks you to choose when both readings fit.
            **kwargs: Other `keras.Model.compile` arguments
                (`jit_compile`, `run_eagerly`, `steps_per_execution`, ...).
        """
        head_losses.check_loss(loss)
        if kwargs.get("loss_weights") is not None:
            raise ValueError(
                "`AndhraModel` weights its heads with `head_weights` (one "
                "float per head), not `loss_weights`. Received: "
                f"loss_weights={kwargs['loss_weights']!r}"
            )
        head_loss = head_losses.HeadLoss(
            loss, self.num_heads, head_reduction, head_weights, head_labels
        )
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        super().compile(optimizer=optimizer, loss=None, **kwargs)
        self._compiled_heads = _Compiled(
            loss=head_loss,
            metrics=head_metrics.HeadMetrics(self.head_names, metrics or ()),
            config={
                "loss": keras.saving.serialize_keras_object(loss),
                "metrics": keras.saving.serialize_keras_object(metrics),
                "head_reduction": head_reduction,
                "head_weights": head_loss.weights,
                "head_labels": head_labels,
            },
        )
        self._show_diagnostics()

    @property
    def head_loss(self):
        """The compiled Keras loss applied to every head (after `compile`)."""
        return self._compiled().loss.loss

    @property
    def head_loss_weights(self):
        """The weight of every head in the combined loss (after `compile`):
        `1 / num_heads` each with `head_reduction="mean"`, 1 with
        `"sum"`, or the compiled `head_weights`."""
        return self._compiled().loss.head_weights()

    @property
    def head_metrics(self):
        """The per-head metrics object (after `compile`): every head's
        loss and compiled metrics, the best head, the ensemble vote."""
        return self._compiled().metrics

    def _compiled(self):
        if self._compiled_heads is None:
            raise ValueError(
                "The model's head loss and metrics come from `compile`: "
                "call `model.compile(...)` first."
            )
        return self._compiled_heads

    @property
    def metrics(self):
        metrics = super().metrics
        if self.compiled and self._compiled_heads is not None:
            metrics = metrics[:1] + [self._compiled_heads.metrics] + metrics[1:]
        return metrics

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        losses = self._compiled().loss.per_head(y, y_pred, sample_weight)
        total = self.combined_loss(losses, self.regularization_loss())
        self.head_metrics.update_losses(losses, total, ops.shape(y_pred)[0])
        return backend.scale_loss_for_replicas(total)

    def combined_loss(self, head_losses, regularization=None):
        """The loss the model trains on: the head losses combined as
        compiled (`head_reduction`, `head_weights`), plus regularisation.

        Args:
            head_losses: The heads' losses, a tensor `(num_heads,)`.
            regularization: The regularisation loss, or `None`.
        """
        return self._compiled().loss.total_loss(head_losses, regularization)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        y_heads, sparse = self._compiled().loss.labels_per_head(y, y_pred.shape)
        self.head_metrics.update_state(
            y_heads, y_pred, sample_weight, sparse=sparse
        )
        return self.get_metrics_result()

    @property
    def gradient_aggregator(self):
        """The `GradientAggregator` of the training step, or `None`."""
        return self._gradient_aggregator

    @gradient_aggregator.setter
    def gradient_aggregator(self, aggregator):
        self._check_aggregator(aggregator)
        self._gradient_aggregator = aggregator
        self._show_diagnostics()
        self._head_step = (
            None if aggregator is None else self.make_head_step(aggregator)
        )
        per_head = aggregator is not None and aggregator.needs_head_gradients
        for layer in self.layers:
            if isinstance(layer, BranchBlock):
                layer.prefer_execution(per_head)

    @property
    def head_step(self):
        """The per-head training step, or `None` for Keras's own step.

        A `keras_andhra.models.HeadStep`, made (by
        `make_head_step`) when `gradient_aggregator` is set. Each
        backend's `train_step` runs it once per step.
        """
        return self._head_step

    def make_train_function(self, force=False):
        if self._head_step is not None:
            # Read now, outside any traced step: walking the graph builds
            # Keras models, which `torch.compile` cannot trace.
            self._head_step.routing.head_reach()
        if self.optimizer is not None and not self.optimizer.built:
            # Without a distribution strategy Keras on TensorFlow leaves
            # the optimizer's slots to the first trace of the step, and a
            # `tf.function` that creates variables is traced twice. Made
            # here, the first epoch of an 8-head ABNet starts in half the
            # time; the other backends build them here anyway.
            self.optimizer.build(self.trainable_variables)
        return super().make_train_function(force=force)

    def make_head_step(self, aggregator):
        """Returns the `HeadStep` that trains with `aggregator`.

        Override to change how the per-head step computes its forward
        pass (return a subclass of `HeadStep`).
        """
        return training_step.HeadStep(self, aggregator)

    def _check_aggregator(self, aggregator):
        if aggregator is None:
            return
        if not isinstance(aggregator, GradientAggregator):
            raise TypeError(
                "`gradient_aggregator` must be a "
                "keras_andhra.gradients.GradientAggregator (such as "
                f"`Mean()`) or None. Received: {aggregator!r}"
            )
        if not aggregator.diagnostic_keys:
            return
        if self.num_heads < 2:
            raise ValueError(
                f"{type(aggregator).__name__} works between heads; this "
                f"model has one ({self.head_names[0]!r}). Train it "
                "without a gradient aggregator."
            )
        if not aggregator.needs_head_gradients and not any(
            isinstance(layer, AndhraSplit) and layer.num_branches > 1
            for layer in self.layers
        ):
            raise ValueError(
                "Representation-level surgery works on the gradients "
                "arriving at the model's AndhraSplit layers, and this "
                "model has none with two branches or more at its top "
                "level. Use granularity='per_variable' (or 'global')."
            )
        unknown = set(aggregator.diagnostic_keys) - set(
            head_metrics.GRADIENT_KEYS
        )
        if unknown:
            raise ValueError(
                f"Aggregator diagnostics must use the keys "
                f"{head_metrics.GRADIENT_KEYS}. Received: {sorted(unknown)}"
            )

    def _show_diagnostics(self):
        if self._compiled_heads is not None:
            aggregator = self.gradient_aggregator
            self._compiled_heads.metrics.gradient_keys = tuple(
                () if aggregator is None else aggregator.diagnostic_keys
            )

    def fit(self, x=None, y=None, *args, **kwargs):
        given = _FIT_SIGNATURE.bind(self, x, y, *args, **kwargs).arguments
        self._check_data(x, y, "fit", finite=True)
        validation = given.get("validation_data")
        if isinstance(validation, (tuple, list)) and validation:
            self._check_data(
                validation[0],
                validation[1] if len(validation) > 1 else None,
                "fit",
                finite=True,
                names=("validation_data[0]", "validation_data[1]"),
            )
        elif validation is not None:
            arguments.check_data("validation_data", validation, "fit")
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_data(x, y, "evaluate")
        with self._evaluating():
            return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_data(x, None, "predict")
        return super().predict(x, *args, **kwargs)

    def _check_data(self, x, y, purpose, finite=False, names=("x", "y")):
        """Refuses, before any step runs, data that the step would take
        silently or fail on unclearly: no examples, text, NaN inputs for
        training, class indices a sparse loss cannot use."""
        arguments.check_data(names[0], x, purpose, finite)
        if len(self.inputs) == 1:
            arguments.check_input_shape(names[0], x, self.inputs[0].shape[1:])
        if y is None:
            return
        arguments.check_data(names[1], y, purpose, finite)
        arguments.check_same_length(names, x, y)
        if self._compiled_heads is not None:
            self._compiled_heads.loss.check_labels(
                names[1], y, self.outputs[0].shape
            )

    def test_on_batch(self, *args, **kwargs):
        with self._evaluating():
            return super().test_on_batch(*args, **kwargs)

    def _evaluating(self):
        """Evaluation computes no gradients: no gradient diagnostics."""
        if self._compiled_heads is None:
            return contextlib.nullcontext()
        return self._compiled_heads.metrics.hiding_gradients()

    def per_head_losses(self, y, leaves, sample_weight=None):
        """The loss of every head, each from that head's own output.

        Used by the per-head gradient step: each loss depends only on its
        head's path, so its gradient walks only that path.

        Args:
            y: Labels, shared or per head, as for `fit`.
            leaves: The list of head outputs before they are stacked.
            sample_weight: Optional per-sample weights.

        Returns:
            A list of scalar losses, one per head.
        """
        loss = self._compiled().loss
        shape = (leaves[0].shape[0], len(leaves)) + tuple(leaves[0].shape[1:])
        y_heads, _ = loss.labels_per_head(y, shape)
        return [
            loss.per_head(
                None,
                ops.expand_dims(leaf, 1),
                sample_weight,
                y_heads=y_heads[:, index : index + 1],
            )[0]
            for index, leaf in enumerate(leaves)
        ]

    def head_outputs(self, x, training=False):
        """Runs the model and returns the heads' outputs, unstacked."""
        step = self._head_step
        if step is None:
            return list(ops.unstack(self(x, training=training), axis=1))
        return list(step.leaves_model(x, training=training))

    def regularization_loss(self):
        """The sum of the model's regularisation losses, or `None`."""
        if not self.losses:
            return None
        return ops.sum(
            [ops.cast(ops.sum(loss), "float32") for loss in self.losses]
        )

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self._compiled_heads is not None:
            config = dict(config)
            config.update(self._compiled_heads.config)
            if self.gradient_aggregator is not None:
                config["gradient_aggregator"] = (
                    keras.saving.serialize_keras_object(
                        self.gradient_aggregator
                    )
                )
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        aggregator = config.pop("gradient_aggregator", None)
        self.compile(**config)
        if aggregator is not None:
            self.gradient_aggregator = aggregator
        if self.built:
            self.optimizer.build(self.trainable_variables)
