"""Stratified, seeded splits of labelled examples (NumPy)."""

import numpy as np

from keras_andhra.utils import arguments


def resolve_size(size, num_examples, what):
    """A split size given as a count or a fraction, as a count."""
    if not arguments.is_number(size):
        raise ValueError(
            f"`{what}` must be a number of examples or a fraction in (0, 1). "
            f"Received: {what}={size!r}"
        )
    if isinstance(size, float):
        if not 0.0 <= size < 1.0:
            raise ValueError(
                f"`{what}` as a fraction must be in [0, 1). Received: "
                f"{what}={size!r}"
            )
        size = int(round(size * num_examples))
    if size < 0 or size >= num_examples:
        raise ValueError(
            f"`{what}` must leave examples to train on: the training split "
            f"has {num_examples}. Received: {what}={size!r}; pass a smaller "
            "number or a fraction such as 0.1."
        )
    return size


def stratified(labels, size, seed):
    """Indices `(kept, held_out)`: `size` held out, class shares kept.

    Every class gives `round(share * size)` examples (largest remainders
    first, so the sizes add up), chosen by a seeded permutation; both
    index arrays come back sorted.
    """
    labels = np.asarray(labels)
    if size == 0:
        return np.arange(len(labels)), np.zeros((0,), "int64")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(labels)
    take = np.floor(exact).astype("int64")
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: size - take.sum()]] += 1
    take = np.minimum(take, counts - 1)
    rng = np.random.default_rng(seed)
    held = []
    for label, k in zip(classes, take):
        members = np.flatnonzero(labels == label)
        held.append(rng.permutation(members)[:k])
    held = np.sort(np.concatenate(held)) if held else np.zeros((0,), "int64")
    kept = np.setdiff1d(np.arange(len(labels)), held)
    return kept, held
