import keras
import numpy as np

from keras_andhra.evaluation import ensembles
from keras_andhra.evaluation import statistics
from keras_andhra.evaluation.head_report import HeadReport
from keras_andhra.layers import head_paths


def rank_heads(
    model,
    x,
    y=None,
    *,
    validation_data=None,
    baseline=None,
    batch_size=None,
    from_logits=None,
    confidence=0.95,
    num_resamples=2000,
    seed=0,
    verbose="auto",
):
    """Ranks the heads of an ANDHRA model, ensembles them, tests them.

    One forward pass over the data gives every head's output (the heads
    come out stacked; no head runs on its own, no partial batch is
    dropped). From it the report gives, per head: accuracy with a
    confidence interval (Wilson), top-5 accuracy with more than five
    classes, cross-entropy, and the parameters and FLOPs of the head's
    path; the five ensembles of `ensemble_predict` and a greedy subset;
    Cochran's Q across the heads; and, with a `baseline`, an exact
    McNemar test of every head against it (Holm-corrected over the heads)
    and a paired bootstrap interval of each accuracy difference.

    Selection without bias: pass `validation_data` and the best head (and
    the ensemble weights and the greedy subset) are chosen on it, and
    reported on `x, y`. Without it they are chosen on the test data
    itself; the best head's test accuracy is then optimistic (the
    winner's curse of picking the best of many on the data that scores
    it, as the reference code does), and the report says so.

    Args:
        model: An ANDHRA model with two heads or more, whose output is
            `(batch, num_heads, num_classes)` scores (logits or
            probabilities).
        x: Test inputs (arrays, as for `model.predict`), or a dataset that
            yields `(inputs, labels)` batches: a `tf.data.Dataset`, a
            `keras.utils.PyDataset`, a generator or any iterable such as a
            PyTorch `DataLoader`.
        y: Test labels, class indices `(n,)` or one-hot `(n, classes)`;
            leave out when `x` is a dataset.
        validation_data: Optional `(x_val, y_val)` or a dataset of
            `(inputs, labels)`, for choosing the best head.
        baseline: Optional baseline to test against: a Keras model with
            the same inputs, or its predictions on the test data, as scores
            `(n, num_classes)` or classes `(n,)`.
        batch_size: Batch size for array inputs (Keras's default: 32).
        from_logits: Whether outputs are logits; `None` reads it from the
            compiled loss, or else from the values.
        confidence: Level of every interval.
        num_resamples: Bootstrap resamples.
        seed: Seed of the bootstrap.
        verbose: `"auto"`, 0 or 1: progress bars while predicting.

    Datasets are read once, to their end: an infinite one (a repeated
    `tf.data.Dataset`, a `PyDataset` with `num_batches=None`) is refused;
    an endless generator would never end. Sample weights are refused:
    every example counts once. A baseline given as predictions must be in
    the order of the test data; with a dataset that shuffles, pass the
    baseline model instead, which is read batch by batch with the model.

    Returns:
        A `HeadReport`.

    Example:

    ```python
    import numpy as np
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, num_levels=1, input_shape=(8, 8, 1))
    x = np.random.rand(64, 8, 8, 1).astype("float32")
    y = np.random.randint(0, 10, size=(64,))
    report = ka.evaluation.rank_heads(
        model, x[32:], y[32:], validation_data=(x[:32], y[:32]), verbose=0
    )
    print(report)
    ```
    """
    names = head_paths.head_names_of(model)
    if not 0.0 < confidence < 1.0:
        raise ValueError(
            f"`confidence` must be in (0, 1). Received: confidence={confidence}"
        )
    if head_paths.integer_index(num_resamples) is None or num_resamples < 1:
        raise ValueError(
            "`num_resamples` must be a positive int. Received: "
            f"num_resamples={num_resamples!r}"
        )
    baseline_model = baseline if isinstance(baseline, keras.Model) else None
    models = [model] + ([baseline_model] if baseline_model else [])
    outputs, labels = predict_with_labels(
        models, x, y, batch_size, verbose, "test"
    )
    outputs[0] = ensembles.check_outputs(outputs[0])
    num_classes = outputs[0].shape[-1]
    labels = check_labels(labels, num_classes, len(outputs[0]), "y")
    if from_logits is None:
        from_logits = ensembles.compiled_from_logits(model)
    if from_logits is None:
        # Decided once, on the test outputs, so validation reads the same.
        from_logits = ensembles.outputs_are_logits(outputs[0])
    probabilities = ensembles.to_probabilities(outputs[0], from_logits)
    correct = probabilities.argmax(-1) == labels[:, None]
    n = len(labels)

    validation = None
    if validation_data is not None:
        val_x, val_y = _split_validation(validation_data)
        (val_outputs,), val_labels = predict_with_labels(
            [model], val_x, val_y, batch_size, verbose, "validation"
        )
        val_outputs = ensembles.check_outputs(val_outputs)
        if val_outputs.shape[1:] != outputs[0].shape[1:]:
            raise ValueError(
                "Validation outputs do not match the test outputs: "
                f"{val_outputs.shape[1:]} vs {outputs[0].shape[1:]}."
            )
        val_labels = check_labels(
            val_labels, num_classes, len(val_outputs), "validation labels"
        )
        val_probabilities = ensembles.to_probabilities(val_outputs, from_logits)
        validation = (val_probabilities, val_labels)

    notes = []
    if validation is None:
        select_probabilities, select_labels = probabilities, labels
        notes.append(
            "No validation data: the best head, the ensemble weights and "
            "the greedy subset were chosen on the test data they are scored "
            "on, so their test accuracies are optimistic (winner's curse). "
            "Pass `validation_data` to choose on held-out data."
        )
    else:
        select_probabilities, select_labels = validation
    select_accuracy = _accuracy(select_probabilities, select_labels)
    select_loss = _cross_entropy(select_probabilities, select_labels)
    best = int(np.lexsort((select_loss, -select_accuracy))[0])

    accuracy = correct.mean(0)
    costs = [head_paths.head_cost(model, i) for i in range(len(names))]
    fields = {
        "head_names": list(names),
        "accuracy": accuracy,
        "accuracy_interval": statistics.wilson_interval(
            correct.sum(0), n, confidence
        ),
        "top5_accuracy": _top_k(probabilities, labels, 5)
        if num_classes > 5
        else None,
        "loss": _cross_entropy(probabilities, labels),
        "validation_accuracy": None if validation is None else select_accuracy,
        "validation_loss": None if validation is None else select_loss,
        "parameters": np.array([c[0] for c in costs]),
        "flops": np.array([c[1] for c in costs]),
        "best_head": names[best],
        "selection": "test" if validation is None else "validation",
        "num_examples": n,
        "num_validation_examples": 0
        if validation is None
        else len(validation[1]),
        "confidence": confidence,
        "notes": notes,
    }
    q, p, df = statistics.cochrans_q(correct)
    fields["cochran"] = {"q": q, "p_value": p, "df": df}

    baseline_correct = None
    if baseline is not None:
        baseline_correct, fields["baseline"] = _baseline(
            baseline, baseline_model, outputs, labels, num_classes, confidence
        )
        fields["significance"] = _significance(
            names, correct, baseline_correct, confidence, num_resamples, seed
        )
    else:
        fields["baseline"] = fields["significance"] = None

    fields["ensembles"] = {}
    for method in ensembles.ENSEMBLE_METHODS:
        predicted = ensembles.combine(probabilities, method, select_accuracy)
        fields["ensembles"][method] = _scored(
            predicted == labels, confidence, baseline_correct
        )
    notes.append(
        "The weighted vote weighs each head by its "
        + ("validation" if validation is not None else "test")
        + " accuracy (the reference code's weights stayed uniform, by a "
        "bug, so its weighted vote was a majority vote)."
    )
    subset = ensembles.greedy_subset(select_probabilities, select_labels, best)
    predicted = probabilities[:, subset].sum(1).argmax(-1)
    fields["subset"] = dict(
        heads=[names[i] for i in subset],
        **_scored(predicted == labels, confidence, None),
    )
    return HeadReport(**fields)


def _scored(correct, confidence, baseline_correct):
    entry = {
        "accuracy": float(correct.mean()),
        "interval": statistics.wilson_interval(
            correct.sum(), len(correct), confidence
        ).tolist(),
    }
    if baseline_correct is not None:
        b, c, p = statistics.mcnemar_exact(correct, baseline_correct)
        entry.update({"b": b, "c": c, "p_value": p})
    return entry


def _baseline(baseline, baseline_model, outputs, labels, classes, confidence):
    if baseline_model is not None:
        scores = np.asarray(outputs[1])
        name = baseline_model.name
        what = f"the baseline model's output of shape {scores.shape}"
    else:
        scores = np.asarray(baseline)
        name, parameters, flops = "predictions", None, None
        what = f"baseline predictions of shape {scores.shape}"
    if scores.ndim == 3:
        raise ValueError(
            f"`baseline` must give one prediction per example; received "
            f"{what}, several heads. To test against one head of another "
            "ANDHRA model, pass `extract_head(other, head)`."
        )
    if scores.ndim not in (1, 2) or (
        scores.ndim == 2 and scores.shape[-1] != classes
    ):
        raise ValueError(
            f"`baseline` must be a Keras model, scores (n, {classes}) or "
            f"classes (n,). Received: {what}"
        )
    if len(scores) != len(labels):
        raise ValueError(
            f"The baseline's predictions cover {len(scores)} examples, the "
            f"test data {len(labels)}: they must be the same examples."
        )
    if scores.ndim == 2:
        predicted = scores.argmax(-1)
    else:
        predicted = check_labels(
            scores, classes, len(labels), "baseline predictions"
        )
    if baseline_model is not None:
        parameters, flops = head_paths.model_cost(baseline_model)
    correct = predicted == labels
    entry = {
        "name": name,
        "parameters": parameters,
        "flops": flops,
        **_scored(correct, confidence, None),
    }
    return correct, entry


def _significance(
    names, correct, baseline_correct, confidence, resamples, seed
):
    tests = [
        statistics.mcnemar_exact(correct[:, i], baseline_correct)
        for i in range(len(names))
    ]
    adjusted = statistics.holm([p for _, _, p in tests])
    intervals = statistics.paired_bootstrap(
        correct, baseline_correct, confidence, resamples, seed
    )
    difference = correct.mean(0) - baseline_correct.mean()
    return {
        name: {
            "b": b,
            "c": c,
            "p_value": p,
            "p_holm": float(adjusted[i]),
            "difference": float(difference[i]),
            "difference_interval": intervals[i].tolist(),
        }
        for i, (name, (b, c, p)) in enumerate(zip(names, tests))
    }


def _accuracy(probabilities, labels):
    return (probabilities.argmax(-1) == labels[:, None]).mean(0)


def _top_k(probabilities, labels, k):
    top = np.argsort(-probabilities, axis=-1, kind="stable")[..., :k]
    return (top == labels[:, None, None]).any(-1).mean(0)


def _cross_entropy(probabilities, labels):
    picked = np.take_along_axis(probabilities, labels[:, None, None], axis=-1)[
        ..., 0
    ]
    return -np.log(np.clip(picked, 1e-12, None)).mean(0)


def _split_validation(validation_data):
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


def _refuse_sample_weights(items, what):
    if len(items) > 2 and items[2] is not None:
        raise ValueError(
            f"The {what} data carries sample weights, which head evaluation "
            "does not use: accuracies, intervals and tests here count every "
            "example once. Give (inputs, labels) only."
        )


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
            f"(0 to {num_classes - 1}). Received: `{what}` from "
            f"{labels.min()} to {labels.max()}."
        )
    return labels


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
    batches, total = _batches(x, what)
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
        raise ValueError(f"The {what} dataset yielded no batches.")
    return [np.concatenate(o) for o in outputs], np.concatenate(labels)


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
