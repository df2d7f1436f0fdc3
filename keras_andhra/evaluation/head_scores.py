"""Scores of the heads and of their ensembles, for `rank_heads`.

Everything works on probabilities `(num_examples, num_heads,
num_classes)` and class-index labels `(num_examples,)` in NumPy.
"""

import numpy as np

from keras_andhra.evaluation import ensembles
from keras_andhra.evaluation import statistics
from keras_andhra.models import head_paths


def head_fields(model, names, test, confidence):
    """The `HeadReport` fields scored on `test`, one value per head.

    `test` is `(probabilities, labels)`.
    """
    probabilities, labels = test
    correct = probabilities.argmax(-1) == labels[:, None]
    num_classes = probabilities.shape[-1]
    costs = [head_paths.head_cost(model, i) for i in range(len(names))]
    q, p, df = statistics.cochrans_q(correct)
    return {
        "head_names": list(names),
        "accuracy": correct.mean(0),
        "accuracy_interval": statistics.wilson_interval(
            correct.sum(0), len(labels), confidence
        ),
        "top5_accuracy": top_k_accuracy(probabilities, labels, 5)
        if num_classes > 5
        else None,
        "loss": cross_entropy(probabilities, labels),
        "parameters": np.array([c[0] for c in costs]),
        "flops": np.array([c[1] for c in costs]),
        "num_examples": len(labels),
        "cochran": {"q": q, "p_value": p, "df": df},
    }


def ensemble_fields(names, test, chosen_on, best, confidence, baseline_correct):
    """The `ensembles` and `subset` fields of a `HeadReport`.

    `test` and `chosen_on` are `(probabilities, labels)`. The weighted
    vote weighs each head by its accuracy on `chosen_on`, and the greedy
    subset is chosen there, starting from head `best`; both are scored on
    `test`, with McNemar against `baseline_correct` when given.
    """
    probabilities, labels = test
    weights = accuracy(*chosen_on)
    scores = {}
    for method in ensembles.ENSEMBLE_METHODS:
        predicted = ensembles.ensemble_classes(probabilities, method, weights)
        scores[method] = scored(
            predicted == labels, confidence, baseline_correct
        )
    subset = ensembles.greedy_subset(*chosen_on, best)
    predicted = probabilities[:, subset].sum(1).argmax(-1)
    return {
        "ensembles": scores,
        "subset": dict(
            heads=[names[i] for i in subset],
            **scored(predicted == labels, confidence, None),
        ),
    }


def scored(correct, confidence, baseline_correct):
    """Accuracy and its interval; McNemar against a baseline if given."""
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


def accuracy(probabilities, labels):
    """Accuracy per head."""
    return (probabilities.argmax(-1) == labels[:, None]).mean(0)


def top_k_accuracy(probabilities, labels, k):
    """Top-`k` accuracy per head; tied scores go to the smallest classes."""
    top = np.argsort(-probabilities, axis=-1, kind="stable")[..., :k]
    return (top == labels[:, None, None]).any(-1).mean(0)


def cross_entropy(probabilities, labels):
    """Cross-entropy per head, probabilities clipped at 1e-12."""
    picked = np.take_along_axis(probabilities, labels[:, None, None], axis=-1)[
        ..., 0
    ]
    return -np.log(np.clip(picked, 1e-12, None)).mean(0)
