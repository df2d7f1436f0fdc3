"""Cutting size-gated layers down to their active units."""

import warnings

import keras
import numpy as np

from keras_andhra import backend
from keras_andhra.growth import sites
from keras_andhra.growth import widening
from keras_andhra.layers.size_gate import SizeGatedLayer


def prune_to_active(model):
    """A copy of `model` cut to the active units of its size-gated layers.

    Every gated layer keeps only the units whose gate is not 0 (the most
    active units over the copies of a branch block), and the layers
    reading it keep the matching input channels, so the copy computes the
    same outputs with fewer parameters: the network to deploy after
    growing. The copy is not compiled. Layers that cannot be resized (see
    `widen_layer`) keep their capacity, with a warning.

    Args:
        model: A model with size-gated layers (Sequential or functional).

    Returns:
        A new model of the same class.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_andhra as ka

    model = keras.Sequential([
        keras.Input((3,)),
        ka.layers.SizeGatedDense(9, activation="tanh", size=4.5),
        keras.layers.Dense(1),
    ])
    small = ka.models.prune_to_active(model)
    small.layers[0].max_units  # 5
    x = np.random.rand(4, 3).astype("float32")
    np.abs(small.predict(x, verbose=0) - model.predict(x, verbose=0)).max()
    ```
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`prune_to_active` takes a Keras model; load a saved one first "
            "with `keras.saving.load_model(path)`. Received: model of type "
            f"{type(model).__name__}"
        )
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    for group in sites.gated_sites(copy):
        active = max(max(site.layer.active_units, 1) for site in group)
        if active >= group[0].layer.capacity:
            continue
        blocked = [site for site in group if site.error is not None]
        if blocked:
            warnings.warn(
                f"prune_to_active: {blocked[0].layer.name!r} keeps its "
                f"{blocked[0].layer.capacity} units: {blocked[0].error}.",
                stacklevel=2,
            )
            continue
        folds = [_fold(site, active) for site in group]
        unfoldable = [site for site, fold in zip(group, folds) if fold is None]
        if unfoldable:
            warnings.warn(
                f"prune_to_active: {unfoldable[0].layer.name!r} keeps its "
                f"{unfoldable[0].layer.capacity} units: between it and "
                f"{unfoldable[0].followers[-1][0].name!r} its switched-off "
                "units become a non-zero constant (a normalisation's "
                "shift), which only a Dense reader can absorb exactly.",
                stacklevel=2,
            )
            continue
        for site, fold in zip(group, folds):
            fold()
            widening.resize_site(site, active)
    backend.refresh_parameters(copy)
    return copy


def _fold(site, active):
    """Folds what the units from `active` on still send into the reader.

    A switched-off unit outputs 0, but a normalisation after it can turn
    that 0 into a constant (its shift). Before those units are cut, their
    constant's contribution moves into the reading Dense's bias. Returns
    the function that does it, or None where it cannot be done exactly (a
    convolution reads them: its zero padding breaks the constant).
    """
    capacity = site.layer.capacity
    shape = site.followers[0][1] if site.followers else (None, capacity)
    x = np.zeros((1,) + tuple(d or 1 for d in shape[1:-1]) + (capacity,))
    x = keras.ops.convert_to_tensor(x.astype("float32"))
    for follower, _ in site.followers[:-1]:
        x = follower(x, training=False)
    constants = keras.ops.convert_to_numpy(x).reshape(-1, capacity)[0]
    constants = constants[active:]
    if not np.any(constants):
        return lambda: None
    reader = site.followers[-1][0]
    if not isinstance(reader, (keras.layers.Dense, SizeGatedLayer)) or (
        isinstance(reader, SizeGatedLayer) and len(reader.kernel.shape) != 2
    ):
        return None
    kernel = keras.ops.convert_to_numpy(reader.kernel)
    first = int(getattr(reader, "feed_size", False)) + active
    shift = constants @ kernel[first : first + len(constants)]

    def apply():
        reader.bias.assign(keras.ops.convert_to_numpy(reader.bias) + shift)

    return apply
