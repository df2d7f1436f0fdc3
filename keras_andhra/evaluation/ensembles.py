"""Ensembles of heads: five ways to combine the heads' predictions.

All work on probabilities `(num_examples, num_heads, num_classes)` in
NumPy; ties go to the smallest class index everywhere (`scipy.stats.mode`
gives them so, as in the reference code, and NumPy's `argmax` takes the
first maximum).
"""

import numpy as np
from scipy import special
from scipy import stats

from keras_andhra.models import head_paths
from keras_andhra.utils import heads as head_lookup

ENSEMBLE_METHODS = (
    "majority",
    "weighted",
    "mean_probability",
    "product_of_experts",
    "borda",
)


def ensemble_predict(
    model,
    x=None,
    method="majority",
    *,
    weights=None,
    heads=None,
    from_logits=None,
    batch_size=None,
    verbose="auto",
):
    """Predicts classes with an ensemble of a model's heads.

    One forward pass gives every head's output; the heads are then
    combined by `method`:

    * `"majority"`: each head votes for its top class; the most votes win
      (the reference code's checkpoint metric).
    * `"weighted"`: each head's vote counts its weight, normally the head's
      accuracy on validation data (`weights=report.validation_accuracy`).
      The reference code meant this too, but never filled in its
      accuracies, so its "weighted" vote was a plain majority vote.
    * `"mean_probability"`: the class of highest mean probability.
    * `"product_of_experts"`: the class of highest summed log probability,
      `sum_h log(p_h + 1e-10)`.
    * `"borda"`: a rank vote; each head gives every class `1 / (rank + 1)`
      by its place in that head's ordering (rank 0 is its top class).

    Ties go to the smallest class index, as in the reference code.

    Args:
        model: An ANDHRA model, or its stacked outputs as an array
            `(num_examples, num_heads, num_classes)` (logits or
            probabilities).
        x: Input data for `model.predict`; not used when `model` is an
            array.
        method: One of `"majority"`, `"weighted"`, `"mean_probability"`,
            `"product_of_experts"`, `"borda"`.
        weights: One non-negative weight per ensembled head; required for
            `"weighted"`, ignored otherwise.
        heads: Optional head names or indices (NumPy integers too) to
            ensemble, a list or one (default: all heads).
        from_logits: Whether the outputs are logits (softmax is applied)
            or probabilities. `None` reads it from the compiled loss, or
            else from the values (rows that are non-negative and sum to 1
            are probabilities).
        batch_size: Passed to `model.predict`.
        verbose: Passed to `model.predict`.

    Returns:
        An int array of predicted classes, `(num_examples,)`.

    Example:

    ```python
    import numpy as np
    import keras_andhra as ka

    logits = np.array([[[2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 1.0, 2.0]]])
    ka.evaluation.ensemble_predict(logits, method="majority")  # [0]: a tie
    ka.evaluation.ensemble_predict(logits, method="mean_probability")  # [1]
    ```
    """
    if method not in ENSEMBLE_METHODS:
        raise ValueError(
            f"Unknown ensemble method {method!r}. Use one of "
            f"{ENSEMBLE_METHODS}. Received: method={method!r}"
        )
    if not hasattr(model, "layers"):
        outputs = np.asarray(model)
        names = None
        loss_from_logits = None
    else:
        names = head_paths.head_names_of(model)
        if x is None:
            raise ValueError(
                "`ensemble_predict(model, x, ...)` needs the input data `x`."
            )
        outputs = model.predict(x, batch_size=batch_size, verbose=verbose)
        loss_from_logits = compiled_from_logits(model)
    outputs = check_outputs(outputs)
    if heads is not None:
        names = names if names is not None else list(range(outputs.shape[1]))
        outputs = outputs[:, head_lookup.head_indices(heads, names)]
    if from_logits is None:
        from_logits = loss_from_logits
    probabilities = to_probabilities(outputs, from_logits)
    if method == "weighted":
        weights = _check_weights(weights, probabilities.shape[1])
    return ensemble_classes(probabilities, method, weights)


def ensemble_classes(probabilities, method, weights=None):
    """Combines `(n, heads, classes)` probabilities into `(n,)` classes."""
    if method == "majority":
        votes = probabilities.argmax(-1)
        return stats.mode(votes, axis=1, keepdims=False).mode
    if method == "weighted":
        votes = np.eye(probabilities.shape[-1])[probabilities.argmax(-1)]
        weights = np.asarray(weights, dtype=float)[None, :, None]
        scores = (votes * weights).sum(1)
    elif method == "mean_probability":
        scores = probabilities.mean(1)
    elif method == "product_of_experts":
        scores = np.log(probabilities + 1e-10).sum(1)
    else:
        # Ordinal ranks from 1: tied probabilities rank by class index.
        ranks = stats.rankdata(-probabilities, method="ordinal", axis=-1)
        scores = (1.0 / ranks).sum(1)
    return scores.argmax(-1)


def greedy_subset(probabilities, labels, start):
    """Heads chosen greedily for the mean-probability ensemble.

    Forward selection without replacement (Caruana et al., 2004): start
    from head `start`, add the head that raises the ensemble's accuracy
    most (ties: lower cross-entropy, then the earlier head), and stop when
    no head improves it. Returns head indices in the order chosen.
    """
    num_heads = probabilities.shape[1]

    def score(total, size):
        mean = total / size
        picked = np.take_along_axis(mean, labels[:, None], -1)[:, 0]
        accuracy = (mean.argmax(-1) == labels).mean()
        return accuracy, -np.log(np.clip(picked, 1e-12, None)).mean()

    chosen = [start]
    total = probabilities[:, start].copy()
    accuracy, loss = score(total, 1)
    while len(chosen) < num_heads:
        candidates = [h for h in range(num_heads) if h not in chosen]
        scores = [
            score(total + probabilities[:, h], len(chosen) + 1)
            for h in candidates
        ]
        k = min(range(len(scores)), key=lambda i: (-scores[i][0], scores[i][1]))
        if (scores[k][0], -scores[k][1]) <= (accuracy, -loss):
            break
        accuracy, loss = scores[k]
        chosen.append(candidates[k])
        total = total + probabilities[:, candidates[k]]
    return chosen


def check_outputs(outputs):
    """Checks that outputs are `(n, heads, classes)` scores."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 3 or outputs.shape[-1] < 2:
        raise ValueError(
            "Head evaluation is for classifiers: the model's output must be "
            "(batch, num_heads, num_classes) with two classes or more. "
            f"Received: outputs of shape {outputs.shape}"
        )
    return outputs.astype("float64")


def outputs_are_logits(outputs):
    """Whether outputs are logits: not rows in [0, 1] that sum to 1.

    The tolerance, 1e-2, lets float16 and bfloat16 probabilities pass.
    """
    return not (
        outputs.min() >= 0.0
        and outputs.max() <= 1.0
        and np.allclose(outputs.sum(-1), 1.0, atol=1e-2)
    )


def to_probabilities(outputs, from_logits=None):
    """Softmax of logits; probabilities are returned as they are."""
    if from_logits is None:
        from_logits = outputs_are_logits(outputs)
    if not from_logits:
        return outputs
    return special.softmax(outputs, axis=-1)


def compiled_from_logits(model):
    """`from_logits` of the model's compiled head loss, if it says."""
    try:
        loss = model.head_loss
    except (AttributeError, ValueError):  # another model, or not compiled
        loss = None
    value = getattr(loss, "from_logits", None)
    return value if isinstance(value, bool) else None


def _check_weights(weights, num_heads):
    if weights is None:
        raise ValueError(
            "`method='weighted'` needs `weights`, one per head, normally the "
            "heads' validation accuracies (`report.validation_accuracy` of "
            "`rank_heads`)."
        )
    weights = np.asarray(weights, dtype=float).reshape(-1)
    if (
        len(weights) != num_heads
        or not np.all(np.isfinite(weights))
        or (weights < 0).any()
        or not weights.sum() > 0
    ):
        raise ValueError(
            f"`weights` must be {num_heads} non-negative numbers, one per "
            "ensembled head, not all zero. Received: "
            f"weights={weights.tolist()}"
        )
    return weights
