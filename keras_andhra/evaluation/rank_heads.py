import keras
import numpy as np

from keras_andhra.evaluation import baseline_comparison
from keras_andhra.evaluation import ensembles
from keras_andhra.evaluation import head_outputs
from keras_andhra.evaluation import head_scores
from keras_andhra.evaluation.head_report import HeadReport
from keras_andhra.models import head_paths
from keras_andhra.utils import arguments


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
    _check_arguments(confidence, num_resamples)
    test, validation, baseline_outputs = _read_data(
        model, x, y, validation_data, baseline, from_logits, batch_size, verbose
    )
    probabilities, labels = test
    # The best head, the ensemble weights and the greedy subset are chosen
    # on validation data when given, else on the test data itself.
    chosen_on = test if validation is None else validation
    fields = head_scores.head_fields(model, names, test, confidence)
    fields.update(
        _selection_fields(names, chosen_on, validated=validation is not None),
        confidence=confidence,
        baseline=None,
        significance=None,
    )
    best = names.index(fields["best_head"])

    baseline_correct = None
    if baseline is not None:
        baseline_correct, entry = baseline_comparison.score_baseline(
            baseline, baseline_outputs, test, confidence
        )
        correct = probabilities.argmax(-1) == labels[:, None]
        fields["baseline"] = entry
        fields["significance"] = baseline_comparison.significance(
            names, correct, baseline_correct, confidence, num_resamples, seed
        )
    fields.update(
        head_scores.ensemble_fields(
            names, test, chosen_on, best, confidence, baseline_correct
        )
    )
    return HeadReport(**fields)


def _check_arguments(confidence, num_resamples):
    if not 0.0 < confidence < 1.0:
        raise ValueError(
            f"`confidence` must be in (0, 1). Received: confidence={confidence}"
        )
    if not arguments.is_int(num_resamples) or num_resamples < 1:
        raise ValueError(
            "`num_resamples` must be a positive int. Received: "
            f"num_resamples={num_resamples!r}"
        )


def _read_data(
    model, x, y, validation_data, baseline, from_logits, batch_size, verbose
):
    """Test and validation `(probabilities, labels)`, baseline outputs."""
    baseline_model = baseline if isinstance(baseline, keras.Model) else None
    models = [model] + ([baseline_model] if baseline_model else [])
    outputs, labels = head_outputs.predict_with_labels(
        models, x, y, batch_size, verbose, "test"
    )
    scores = ensembles.check_outputs(outputs[0])
    labels = head_outputs.check_labels(
        labels, scores.shape[-1], len(scores), "y"
    )
    if from_logits is None:
        from_logits = ensembles.compiled_from_logits(model)
    if from_logits is None:
        # Decided once, on the test outputs, so validation reads the same.
        from_logits = ensembles.outputs_are_logits(scores)
    test = (ensembles.to_probabilities(scores, from_logits), labels)
    validation = None
    if validation_data is not None:
        validation = _read_validation(
            model,
            validation_data,
            scores.shape,
            from_logits,
            batch_size,
            verbose,
        )
    baseline_outputs = outputs[1] if baseline_model else None
    return test, validation, baseline_outputs


def _read_validation(
    model, validation_data, test_shape, from_logits, batch_size, verbose
):
    val_x, val_y = head_outputs.split_validation(validation_data)
    (outputs,), labels = head_outputs.predict_with_labels(
        [model], val_x, val_y, batch_size, verbose, "validation"
    )
    outputs = ensembles.check_outputs(outputs)
    if outputs.shape[1:] != test_shape[1:]:
        raise ValueError(
            "Validation outputs do not match the test outputs: "
            f"{outputs.shape[1:]} vs {test_shape[1:]}."
        )
    labels = head_outputs.check_labels(
        labels, outputs.shape[-1], len(outputs), "validation labels"
    )
    return ensembles.to_probabilities(outputs, from_logits), labels


def _selection_fields(names, chosen_on, validated):
    probabilities, labels = chosen_on
    accuracy = head_scores.accuracy(probabilities, labels)
    loss = head_scores.cross_entropy(probabilities, labels)
    best = int(np.lexsort((loss, -accuracy))[0])
    return {
        "best_head": names[best],
        "selection": "validation" if validated else "test",
        "validation_accuracy": accuracy if validated else None,
        "validation_loss": loss if validated else None,
        "num_validation_examples": len(labels) if validated else 0,
        "notes": _notes(validated),
    }


def _notes(validated):
    notes = []
    if not validated:
        notes.append(
            "No validation data: the best head, the ensemble weights and "
            "the greedy subset were chosen on the test data they are scored "
            "on, so their test accuracies are optimistic (winner's curse). "
            "Pass `validation_data` to choose on held-out data."
        )
    notes.append(
        "The weighted vote weighs each head by its "
        + ("validation" if validated else "test")
        + " accuracy (the reference code's weights stayed uniform, by a "
        "bug, so its weighted vote was a majority vote)."
    )
    return notes
