"""Testing the heads against a baseline, for `rank_heads`."""

import keras
import numpy as np

from keras_andhra.evaluation import head_outputs
from keras_andhra.evaluation import head_scores
from keras_andhra.evaluation import statistics
from keras_andhra.models import head_paths


def score_baseline(baseline, baseline_outputs, test, confidence):
    """Which test examples the baseline got right, and its report entry.

    `test` is the heads' `(probabilities, labels)`. `baseline` is a Keras
    model, whose `baseline_outputs` on the test data were read with the
    heads', or its predictions (`baseline_outputs` is then `None`): scores
    `(n, num_classes)` or classes `(n,)`.
    """
    is_model = isinstance(baseline, keras.Model)
    scores = np.asarray(baseline_outputs if is_model else baseline)
    if is_model:
        what = f"the baseline model's output of shape {scores.shape}"
    else:
        what = f"baseline predictions of shape {scores.shape}"
    correct = _predicted_classes(scores, what, test) == test[1]
    if is_model:
        name = baseline.name
        parameters, flops = head_paths.model_cost(baseline)
    else:
        name, parameters, flops = "predictions", None, None
    entry = {
        "name": name,
        "parameters": parameters,
        "flops": flops,
        **head_scores.scored(correct, confidence, None),
    }
    return correct, entry


def significance(
    names, correct, baseline_correct, confidence, num_resamples, seed
):
    """Per head: exact McNemar, Holm over the heads, bootstrap interval."""
    tests = [
        statistics.mcnemar_exact(correct[:, i], baseline_correct)
        for i in range(len(names))
    ]
    adjusted = statistics.holm([p for _, _, p in tests])
    intervals = statistics.paired_bootstrap(
        correct, baseline_correct, confidence, num_resamples, seed
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


def _predicted_classes(scores, what, test):
    num_classes = test[0].shape[-1]
    labels = test[1]
    if scores.ndim == 3:
        raise ValueError(
            f"`baseline` must give one prediction per example; received "
            f"{what}, several heads. To test against one head of another "
            "ANDHRA model, pass `extract_head(other, head)`."
        )
    if scores.ndim not in (1, 2) or (
        scores.ndim == 2 and scores.shape[-1] != num_classes
    ):
        raise ValueError(
            f"`baseline` must be a Keras model, scores (n, {num_classes}) or "
            f"classes (n,). Received: {what}"
        )
    if len(scores) != len(labels):
        raise ValueError(
            f"The baseline's predictions cover {len(scores)} examples, the "
            f"test data {len(labels)}: they must be the same examples."
        )
    if scores.ndim == 2:
        return scores.argmax(-1)
    return head_outputs.check_labels(
        scores, num_classes, len(labels), "baseline predictions"
    )
