"""Reading the heads' outputs and the labels, from arrays or a dataset."""

import keras
import numpy as np


def predict_with_labels(models, x, y, batch_size, verbose, what):
    """Every model's outputs on `x` in one pass, and the labels.

    Arrays go through `model.predict`; a dataset is read once, batch by
    batch, so that labels and outputs stay paired even when it shuffles.
    """
    if y is not None:
        if _is_dataset(x):
            raise ValueError(
                f"Give the {what} labels inside the dataset, not as `y`, "
                "when the inputs are a dataset."
            )
        count = len(keras.tree.flatten(x)[0])
        if len(y) != count:
            raise ValueError(
                f"The {what} data has {count} inputs but {len(y)} labels; "
                "give one label per example."
            )
        outputs = [
            np.asarray(m.predict(x, batch_size=batch_size, verbose=verbose))
            for m in models
        ]
        return outputs, np.asarray(y)
    if not _is_dataset(x):
        raise ValueError(
            f"The {what} labels are missing: pass arrays and labels, or a "
            "dataset that yields (inputs, labels) batches."
        )
    return _predict_batches(models, x, verbose, what)


def check_labels(labels, num_classes, num_examples, what):
    """Class-index labels `(n,)` from indices or one-hot labels."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2 and labels.shape[1] == num_classes:
        labels = labels.argmax(-1)
    if labels.ndim != 1:
        raise ValueError(
            f"`{what}` must be class indices (n,) or one-hot (n, "
            f"{num_classes}). Received: shape {labels.shape}"
        )
    if len(labels) != num_examples:
        raise ValueError(
            f"`{what}` has {len(labels)} labels for {num_examples} examples;"
            " give one label per example."
        )
    if not np.all(np.equal(np.mod(labels, 1), 0)):
        raise ValueError(f"`{what}` must be whole class indices.")
    labels = labels.astype("int64")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"Labels out of range: the model has {num_classes} classes "
            f"(0 to {num_classes - 1}); map the classes to 0.."
            f"{num_classes - 1}. Received: `{what}` from {labels.min()} to "
            f"{labels.max()}."
        )
    return labels


def split_validation(validation_data):
    """`(x_val, y_val)` from a tuple, or `(dataset, None)`."""
    if isinstance(validation_data, (tuple, list)):
        if len(validation_data) not in (2, 3):
            raise ValueError(
                "`validation_data` must be `(x_val, y_val)` or a dataset of "
                "(inputs, labels) batches. Received: a tuple of "
                f"{len(validation_data)} items."
            )
        _refuse_sample_weights(validation_data, "validation")
        return validation_data[0], validation_data[1]
    return validation_data, None


def _predict_batches(models, dataset, verbose, what):
    batches, total = _batches(dataset, what)
    progress = None
    if verbose == 1 or (verbose == "auto" and total is not None):
        progress = keras.utils.Progbar(total, verbose=1 if verbose else 0)
    outputs = [[] for _ in models]
    labels = []
    for step, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                f"The {what} dataset must yield (inputs, labels) batches. "
                f"Received a batch of type {type(batch).__name__}."
            )
        _refuse_sample_weights(batch, what)
        inputs = keras.tree.map_structure(np.asarray, batch[0])
        for out, m in zip(outputs, models):
            out.append(np.asarray(m.predict_on_batch(inputs)))
        labels.append(np.asarray(batch[1]))
        if progress is not None:
            progress.update(step + 1)
    if not labels:
        raise ValueError(
            f"The {what} dataset yielded no batches: head evaluation needs "
            "one example or more. Check how the data was loaded, filtered "
            "or split."
        )
    return [np.concatenate(o) for o in outputs], np.concatenate(labels)


def _refuse_sample_weights(items, what):
    if len(items) > 2 and items[2] is not None:
        raise ValueError(
            f"The {what} data carries sample weights, which head evaluation "
            "does not use: accuracies, intervals and tests here count every "
            "example once. Give (inputs, labels) only."
        )


def _is_dataset(x):
    if isinstance(x, (np.ndarray, dict, list, tuple)) or hasattr(x, "shape"):
        return False
    return isinstance(x, keras.utils.PyDataset) or hasattr(x, "__iter__")


def _batches(x, what):
    total = None
    if isinstance(x, keras.utils.PyDataset):
        total = x.num_batches
        infinite = total is None
    else:
        # A tf.data.Dataset's cardinality: -1 is infinite, -2 unknown.
        infinite = hasattr(x, "cardinality") and int(x.cardinality()) == -1
    if infinite:
        raise ValueError(
            f"The {what} dataset is infinite (for instance a repeated "
            "`tf.data.Dataset`): head evaluation reads the data once, to its "
            "end. Pass a finite dataset, e.g. `dataset.take(steps)`."
        )
    if total is not None:
        return (x[i] for i in range(total)), total
    try:
        total = len(x)
    except TypeError:
        total = None
    return iter(x), total
