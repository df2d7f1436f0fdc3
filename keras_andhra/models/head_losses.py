"""One Keras loss applied to every head, and the heads' combined loss.

`HeadLoss` is what `AndhraModel.compile` configures: the loss, how the
head losses combine (mean, sum or weights) and how labels map to heads
(shared or per head). It computes every head's loss in one loss call,
with the heads folded into the batch axis, each reduced as Keras reduces
the loss on its own.
"""

import keras
import numpy as np
from keras import ops

from keras_andhra.utils import arguments

REDUCTIONS = ("mean", "sum")
HEAD_LABELS = ("auto", "shared", "per_head")


class HeadLoss:
    """The compiled head loss of an `AndhraModel` (see `compile`)."""

    def __init__(self, loss, num_heads, reduction, weights, labels):
        check_loss(loss)
        arguments.check_one_of("head_reduction", reduction, REDUCTIONS)
        arguments.check_one_of("head_labels", labels, HEAD_LABELS)
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != num_heads:
                raise ValueError(
                    f"`head_weights` needs one weight per head "
                    f"({num_heads}). Received: {len(weights)} weights."
                )
        self.loss = keras.losses.get(loss)
        self.reduction = reduction
        self.weights = weights
        self.labels = labels
        self.num_heads = num_heads

    def head_weights(self):
        """The weight of every head in the combined loss."""
        if self.weights is not None:
            return tuple(self.weights)
        if self.reduction == "sum":
            return (1.0,) * self.num_heads
        return (1.0 / self.num_heads,) * self.num_heads

    def total_loss(self, head_losses, regularization=None):
        """The combined loss: the reduced head losses, plus regularisation."""
        if self.weights is not None:
            total = ops.sum(head_losses * ops.convert_to_tensor(self.weights))
        elif self.reduction == "sum":
            total = ops.sum(head_losses)
        else:
            total = ops.mean(head_losses)
        if regularization is not None:
            total = total + ops.cast(regularization, total.dtype)
        return total

    def per_head(self, y, y_pred, sample_weight=None, y_heads=None):
        """Loss of every head, `(num_heads,)`, in one loss call.

        Each head's loss is reduced as Keras reduces the loss on its own
        (the loss's `reduction`, sample weights of per-sample or
        per-step shape).
        """
        if y_heads is None:
            y_heads, _ = self.labels_per_head(y, y_pred.shape)
        if keras.backend.standardize_dtype(y_pred.dtype) in (
            "float16",
            "bfloat16",
        ):
            y_pred = ops.cast(y_pred, "float32")
        num_heads = y_pred.shape[1]
        flat_pred = ops.reshape(y_pred, (-1,) + tuple(y_pred.shape[2:]))
        flat_true = ops.reshape(y_heads, (-1,) + tuple(y_heads.shape[2:]))
        if isinstance(self.loss, keras.losses.Loss):
            per_sample = self.loss.call(flat_true, flat_pred)
        else:
            per_sample = self.loss(flat_true, flat_pred)
        # Rows are (sample, head) pairs, sample-major; losses may keep
        # more axes (per time step, per pixel).
        per_sample = ops.cast(per_sample, "float32")
        per_sample = ops.reshape(
            per_sample, (-1, num_heads) + tuple(per_sample.shape[1:])
        )
        return self._reduce(per_sample, sample_weight)

    def _reduce(self, per_sample, sample_weight):
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
        reduction = getattr(self.loss, "reduction", "sum_over_batch_size")
        if reduction == "sum":
            return ops.sum(per_sample, axis=axes)
        if reduction == "mean_with_sample_weight" and weight is not None:
            return ops.divide_no_nan(
                ops.sum(per_sample, axis=axes), ops.sum(weight)
            )
        return ops.mean(per_sample, axis=axes)

    def check_labels(self, name, y, pred_shape):
        """Refuses class indices that a sparse loss cannot use.

        Read from arrays before any step runs: inside the step JAX gives
        an index out of range a loss of 0 and trains on silently
        (TensorFlow and PyTorch fail there, unclearly), and every backend
        truncates a fractional index.
        """
        num_classes = pred_shape[-1]
        fn = getattr(self.loss, "fn", self.loss)
        if (
            fn is not keras.losses.sparse_categorical_crossentropy
            or num_classes is None
            or not hasattr(y, "shape")
        ):
            return
        labels = y if isinstance(y, np.ndarray) else ops.convert_to_numpy(y)
        if isinstance(self.loss, keras.losses.Loss):
            ignored = self.loss.get_config().get("ignore_class")
            if ignored is not None:
                labels = labels[labels != ignored]
        if not labels.size:
            return
        fractional = labels[np.mod(labels, 1) != 0]
        if fractional.size:
            raise ValueError(
                f"`{name}` must be whole class indices for a sparse "
                "categorical loss, which would truncate "
                f"{fractional[0]} to {int(fractional[0])}; round them, or "
                f"map the classes to 0..{num_classes - 1}. Received: "
                f"{name} of dtype {labels.dtype} with {fractional.size} "
                "fractional values"
            )
        low, high = labels.min(), labels.max()
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"Labels out of range: the heads have {num_classes} classes, "
                f"so `{name}` must hold class indices 0 to "
                f"{num_classes - 1}. Map the classes to 0..{num_classes - 1}"
                ", or give every head one output per class. Received: "
                f"{name} from {low:g} to {high:g}"
            )

    def labels_per_head(self, y, pred_shape):
        """Returns labels with a head axis and whether they are sparse."""
        y = ops.convert_to_tensor(y)
        rest = tuple(pred_shape[2:])
        num_heads = pred_shape[1]
        shape = tuple(y.shape[1:])
        rank = len(y.shape)
        shared_sparse = shape == rest[:-1]
        shared_dense = shape == rest
        per_head_sparse = shape == (num_heads,) + rest[:-1]
        per_head_dense = shape == (num_heads,) + rest
        if rest and shape == rest[:-1] + (1,) and rest[-1] != 1:
            y = ops.squeeze(y, axis=-1)
            shared_sparse, shared_dense = True, False
        mode = self.labels
        if mode == "auto":
            mode = _read_labels(
                y,
                num_heads,
                shared_sparse or shared_dense,
                per_head_sparse or per_head_dense,
            )
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
            f"{rank} labels received."
        )


def _read_labels(y, num_heads, shared, per_head):
    """`"shared"`, `"per_head"` or `None`, from the labels' shape."""
    if shared and per_head:
        raise ValueError(
            f"Labels of shape {tuple(y.shape)} fit both as one label "
            f"per sample and as one per head ({num_heads} heads); "
            "say which with compile(head_labels='shared') or "
            "compile(head_labels='per_head')."
        )
    return "shared" if shared else "per_head" if per_head else None


def check_loss(loss):
    """Refuses what `AndhraModel.compile` cannot apply to every head."""
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
    if isinstance(loss, str):
        try:
            keras.losses.get(loss)
        except ValueError:
            raise ValueError(
                f"Unknown loss {loss!r}. Use a Keras loss name (such as "
                "'sparse_categorical_crossentropy'), a function or a "
                f"`keras.losses.Loss`. Received: loss={loss!r}"
            ) from None
    if getattr(loss, "reduction", "sum_over_batch_size") in (None, "none"):
        raise ValueError(
            "The heads' losses are reduced to one number per head, so the "
            "loss needs a reduction ('sum_over_batch_size', 'mean', "
            "'sum' or 'mean_with_sample_weight'). Received: "
            f"reduction={loss.reduction!r}"
        )
