import contextlib

import keras
from keras import ops

from keras_andhra import backend
from keras_andhra.gradients import GradientAggregator
from keras_andhra.layers import AndhraSplit
from keras_andhra.layers import HeadCollector
from keras_andhra.models import gradient_step
from keras_andhra.models import head_metrics

_REDUCTIONS = ("mean", "sum")
_HEAD_LABELS = ("auto", "shared", "per_head")


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
    applies its result. Set it before `fit` (a callback that changes it
    mid-fit rebuilds the train function with
    `model.make_train_function(force=True)`).

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

    @property
    def head_names(self):
        """Names of the heads, in the order of the output's head axis."""
        return self._collector().head_names

    @property
    def num_heads(self):
        """The number of heads."""
        return self._collector().num_heads

    def _collector(self):
        for layer in reversed(self.layers):
            if isinstance(layer, HeadCollector):
                return layer
        raise ValueError(
            "An AndhraModel needs a `HeadCollector` layer making its output; "
            "end the network with `keras_andhra.layers.HeadCollector()`."
        )

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
        if loss is None:
            raise ValueError(
                "`AndhraModel.compile` needs a `loss`, which it applies to "
                "every head, e.g. loss='sparse_categorical_crossentropy'."
            )
        if isinstance(loss, (list, tuple, dict)):
            raise ValueError(
                "`AndhraModel` applies one loss to every head; pass a single "
                "loss, and `head_weights` to weight the heads. Received: "
                f"loss={loss!r}"
            )
        if kwargs.get("loss_weights") is not None:
            raise ValueError(
                "`AndhraModel` weights its heads with `head_weights` (one "
                "float per head), not `loss_weights`. Received: "
                f"loss_weights={kwargs['loss_weights']!r}"
            )
        if getattr(loss, "reduction", "sum_over_batch_size") in (None, "none"):
            raise ValueError(
                "The heads' losses are reduced to one number per head, so the "
                "loss needs a reduction ('sum_over_batch_size', 'mean', "
                "'sum' or 'mean_with_sample_weight'). Received: "
                f"reduction={loss.reduction!r}"
            )
        if head_reduction not in _REDUCTIONS:
            raise ValueError(
                f"`head_reduction` must be one of {_REDUCTIONS}. Received: "
                f"head_reduction={head_reduction!r}"
            )
        if head_labels not in _HEAD_LABELS:
            raise ValueError(
                f"`head_labels` must be one of {_HEAD_LABELS}. Received: "
                f"head_labels={head_labels!r}"
            )
        if head_weights is not None:
            head_weights = [float(w) for w in head_weights]
            if len(head_weights) != self.num_heads:
                raise ValueError(
                    f"`head_weights` needs one weight per head "
                    f"({self.num_heads}). Received: {len(head_weights)} "
                    f"weights."
                )
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        super().compile(optimizer=optimizer, loss=None, **kwargs)
        self._head_loss = keras.losses.get(loss)
        self._head_reduction = head_reduction
        self._head_weights = head_weights
        self._head_labels = head_labels
        # Kept out of Keras's automatic tracking (which would keep every
        # compile's metrics forever); listed by the `metrics` property, the
        # way Keras lists its own compiled metrics.
        self.__dict__["_head_metrics"] = head_metrics.HeadMetrics(
            self.head_names, metrics or ()
        )
        self._show_diagnostics()
        self._andhra_compile_config = {
            "loss": keras.saving.serialize_keras_object(loss),
            "metrics": keras.saving.serialize_keras_object(metrics),
            "head_reduction": head_reduction,
            "head_weights": head_weights,
            "head_labels": head_labels,
        }

    @property
    def metrics(self):
        metrics = super().metrics
        head = self.__dict__.get("_head_metrics")
        if self.compiled and head is not None:
            metrics = metrics[:1] + [head] + metrics[1:]
        return metrics

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        head_losses = self._head_losses(y, y_pred, sample_weight)
        self._head_metrics.update_losses(head_losses)
        total = self._combine(head_losses, self.regularization_loss())
        return backend.scale_loss_for_replicas(total)

    def _combine(self, head_losses, regularization):
        """The combined loss: reduced head losses plus regularisation."""
        if self._head_weights is not None:
            total = ops.sum(
                head_losses * ops.convert_to_tensor(self._head_weights)
            )
        elif self._head_reduction == "sum":
            total = ops.sum(head_losses)
        else:
            total = ops.mean(head_losses)
        if regularization is not None:
            total = total + ops.cast(regularization, total.dtype)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        y_heads, sparse = self._labels_per_head(y, y_pred.shape)
        self._head_metrics.update_state(
            y_heads, y_pred, sample_weight, sparse=sparse
        )
        return self.get_metrics_result()

    def _head_losses(self, y, y_pred, sample_weight, y_heads=None):
        """Loss of every head, `(num_heads,)`, in one loss call.

        Each head's loss is reduced as Keras reduces the loss on its own
        (the loss's `reduction`, sample weights of per-sample or
        per-step shape).
        """
        if y_heads is None:
            y_heads, _ = self._labels_per_head(y, y_pred.shape)
        if keras.backend.standardize_dtype(y_pred.dtype) in (
            "float16",
            "bfloat16",
        ):
            y_pred = ops.cast(y_pred, "float32")
        num_heads = y_pred.shape[1]
        flat_pred = ops.reshape(y_pred, (-1,) + tuple(y_pred.shape[2:]))
        flat_true = ops.reshape(y_heads, (-1,) + tuple(y_heads.shape[2:]))
        loss = self._head_loss
        if isinstance(loss, keras.losses.Loss):
            per_sample = loss.call(flat_true, flat_pred)
        else:
            per_sample = loss(flat_true, flat_pred)
        # Rows are (sample, head) pairs, sample-major; losses may keep
        # more axes (per time step, per pixel).
        per_sample = ops.cast(per_sample, "float32")
        per_sample = ops.reshape(
            per_sample, (-1, num_heads) + tuple(per_sample.shape[1:])
        )
        rank = len(per_sample.shape)
        weight = None
        if sample_weight is not None:
            # (batch, 1, ...): the same weights for every head, brought to
            # the loss's rank as Keras does.
            weight = ops.expand_dims(ops.cast(sample_weight, "float32"), 1)
            while len(weight.shape) < rank:
                weight = ops.expand_dims(weight, -1)
            while len(weight.shape) > rank and weight.shape[-1] == 1:
                weight = ops.squeeze(weight, -1)
            per_sample = per_sample * weight
        axes = (0,) + tuple(range(2, rank))
        reduction = getattr(loss, "reduction", "sum_over_batch_size")
        if reduction == "sum":
            return ops.sum(per_sample, axis=axes)
        if reduction == "mean_with_sample_weight" and weight is not None:
            return ops.divide_no_nan(
                ops.sum(per_sample, axis=axes), ops.sum(weight)
            )
        return ops.mean(per_sample, axis=axes)

    def _labels_per_head(self, y, pred_shape):
        """Returns labels with a head axis and whether they are sparse."""
        y = ops.convert_to_tensor(y)
        rest = tuple(pred_shape[2:])
        num_heads = pred_shape[1]
        rank = len(y.shape) - 1
        shared_sparse = tuple(y.shape[1:]) == rest[:-1]
        shared_dense = tuple(y.shape[1:]) == rest
        per_head_sparse = tuple(y.shape[1:]) == (num_heads,) + rest[:-1]
        per_head_dense = tuple(y.shape[1:]) == (num_heads,) + rest
        if rest and tuple(y.shape[1:]) == rest[:-1] + (1,) and rest[-1] != 1:
            y = ops.squeeze(y, axis=-1)
            shared_sparse, shared_dense = True, False
        mode = self._head_labels
        if mode == "auto":
            shared = shared_sparse or shared_dense
            per_head = per_head_sparse or per_head_dense
            if shared and per_head:
                raise ValueError(
                    f"Labels of shape {tuple(y.shape)} fit both as one label "
                    f"per sample and as one per head ({num_heads} heads); "
                    "say which with compile(head_labels='shared') or "
                    "compile(head_labels='per_head')."
                )
            mode = "shared" if shared else "per_head" if per_head else None
        if mode == "shared" and (shared_sparse or shared_dense):
            y = ops.broadcast_to(
                ops.expand_dims(y, 1),
                (ops.shape(y)[0], num_heads) + tuple(y.shape[1:]),
            )
            return y, shared_sparse and not shared_dense
        if mode == "per_head" and (per_head_sparse or per_head_dense):
            return y, per_head_sparse and not per_head_dense
        raise ValueError(
            f"Labels of shape {tuple(y.shape)} fit no head: the model's "
            f"output is (batch, {num_heads}, {', '.join(map(str, rest))}). "
            "Give one label per sample (shape (batch,) + label shape) or one "
            f"per head (shape (batch, {num_heads}) + label shape). rank "
            f"{rank + 1} labels received."
        )

    @property
    def gradient_aggregator(self):
        """The `GradientAggregator` of the training step, or `None`."""
        return self.__dict__.get("_gradient_aggregator")

    @gradient_aggregator.setter
    def gradient_aggregator(self, aggregator):
        if aggregator is not None and not isinstance(
            aggregator, GradientAggregator
        ):
            raise TypeError(
                "`gradient_aggregator` must be a "
                "keras_andhra.gradients.GradientAggregator (such as "
                f"`Mean()`) or None. Received: {aggregator!r}"
            )
        if aggregator is not None and aggregator.diagnostic_keys:
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
                    f"{head_metrics.GRADIENT_KEYS}. Received: "
                    f"{sorted(unknown)}"
                )
        self.__dict__["_gradient_aggregator"] = aggregator
        self._show_diagnostics()
        if aggregator is not None:
            # Built now, not in the traced step: torch.compile cannot trace
            # the construction of Keras models.
            self._leaves_model()
            gradient_step.head_reach(self)
        gradient_step.set_branch_execution(
            self,
            aggregator is not None and aggregator.needs_head_gradients,
        )

    def _show_diagnostics(self):
        metrics = self.__dict__.get("_head_metrics")
        if metrics is not None:
            aggregator = self.gradient_aggregator
            metrics.gradient_keys = tuple(
                () if aggregator is None else aggregator.diagnostic_keys
            )

    def evaluate(self, *args, **kwargs):
        with self._evaluating():
            return super().evaluate(*args, **kwargs)

    def test_on_batch(self, *args, **kwargs):
        with self._evaluating():
            return super().test_on_batch(*args, **kwargs)

    def _evaluating(self):
        """Evaluation computes no gradients: no gradient diagnostics."""
        metrics = self.__dict__.get("_head_metrics")
        if metrics is None:
            return contextlib.nullcontext()
        return metrics.hiding_gradients()

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
        shape = (leaves[0].shape[0], len(leaves)) + tuple(leaves[0].shape[1:])
        y_heads, _ = self._labels_per_head(y, shape)
        return [
            self._head_losses(
                None,
                ops.expand_dims(leaf, 1),
                sample_weight,
                y_heads=y_heads[:, index : index + 1],
            )[0]
            for index, leaf in enumerate(leaves)
        ]

    def head_step_losses(self, x, y, sample_weight=None):
        """The training forward pass of the per-head gradient steps.

        Returns:
            `(leaves, head_losses, regularization)`: the heads' outputs
            (unstacked), one loss per head, and the regularisation loss
            (or `None`).
        """
        leaves = self.head_outputs(x, training=True)
        head_losses = self.per_head_losses(y, leaves, sample_weight)
        return leaves, head_losses, self.regularization_loss()

    def head_outputs(self, x, training=False):
        """Runs the model and returns the heads' outputs, unstacked."""
        return list(self._leaves_model()(x, training=training))

    def _leaves_model(self):
        leaves = self.__dict__.get("_leaves")
        if leaves is None:
            # Shares every layer (and variable) with this model; kept out
            # of tracking so that its variables are not listed twice.
            leaves = keras.Model(self.input, self._collector().input)
            self.__dict__["_leaves"] = leaves
        return leaves

    def aggregate_gradients(
        self, head_gradients, extra=None, variables=(), scale=None, step=0
    ):
        """Aggregates per-head gradients; adds `extra`; fills unreached.

        Gradients of heads whose path does not reach a variable are
        dropped (the model reads the paths from its graph), so aggregators
        see `None` there on every backend.

        Args:
            head_gradients: One list of gradients (or `None`) per head.
            extra: Optional gradients to add once (the regularisation's).
            variables: The variables (or their values), for the shapes of
                the zeros given to variables that no gradient reached.
            scale: The loss scale the gradients carry (mixed precision),
                undone for the aggregator and redone after; `None` if
                none.
            step: The optimizer's iteration counter.

        Returns:
            `(gradients, diagnostics)`: one gradient tensor per variable,
            and the aggregator's diagnostics for the logs.
        """
        return gradient_step.aggregate(
            self, head_gradients, extra, variables, scale, step
        )

    def split_surgery(self, probe, scale=None, step=0):
        """Context: the aggregator's surgery at every split (representation).

        While it is active, every `AndhraSplit` with two branches or more
        hands out its copies through an op whose backward pass combines
        the branches' gradients with the aggregator's surgery, and adds
        the diagnostic counts to the gradient of `probe` (zeros, `(4,)`).
        """
        return gradient_step.split_surgery(self, probe, scale, step)

    def surgery_diagnostics(self, probe_gradient):
        """The logged diagnostics from the gradient of the surgery probe."""
        return gradient_step.surgery_diagnostics(probe_gradient)

    def regularization_loss(self):
        """The sum of the model's regularisation losses, or `None`."""
        if not self.losses:
            return None
        return ops.sum(
            [ops.cast(ops.sum(loss), "float32") for loss in self.losses]
        )

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and hasattr(self, "_andhra_compile_config"):
            config = dict(config)
            config.update(self._andhra_compile_config)
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

    def record_step(
        self,
        x,
        y,
        leaves,
        head_losses,
        sample_weight=None,
        regularization=None,
        diagnostics=None,
    ):
        """Updates the logs after a per-head gradient step.

        Args:
            x: The batch's inputs.
            y: The batch's labels.
            leaves: The heads' outputs, unstacked.
            head_losses: The heads' losses (scalars, unscaled).
            sample_weight: Optional per-sample weights.
            regularization: The step's regularisation loss, or `None`.
            diagnostics: The aggregator's diagnostics (a dict), logged
                under their keys.

        Returns:
            The logs dict, as `compute_metrics` returns it.
        """
        head_losses = ops.stack(head_losses)
        self._head_metrics.update_losses(head_losses)
        total = self._combine(head_losses, regularization)
        batch_size = ops.shape(keras.tree.flatten(x)[0])[0]
        # Keras has no public hook for the `loss` entry of the logs; its own
        # steps update this tracker. andhra_model_test checks the value.
        self._loss_tracker.update_state(total, sample_weight=batch_size)
        y_pred = ops.stack(leaves, axis=1)
        if diagnostics:
            self._head_metrics.update_gradients(diagnostics)
        return self.compute_metrics(x, y, y_pred, sample_weight)
