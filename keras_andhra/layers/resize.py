"""Rebuilding a built layer with other shapes, keeping its values.

Growth changes variable shapes: a size-gated layer gets more units, the
layers that read its output more input channels. Keras variables cannot
change shape, so the layer's variables are replaced: the old ones are
removed and untracked, the layer builds
anew for the new shapes, and every old value is copied into the leading
slice of its new variable, matched by path. What lies beyond the old
shape keeps the fresh initialisation.
"""

import contextlib

import keras
import numpy as np


@contextlib.contextmanager
def unlocked_state(layer):
    """Lets a built layer create variables again, then locks it.

    Keras locks a layer's state after `build()` and has no public way to
    give a built layer variables of another shape. This module is the one
    place in keras_andhra that reaches past it (`_tracker`, `_lock_state`,
    `_untrack_variable`; for optimizers, below, the weight-decay exclusions
    and the moving averages of `use_ema`);
    tests/growth_test.py::test_keras_state_lock_is_where_we_expect fails
    loudly if Keras changes any of them.
    """
    tracker = layer._tracker
    tracker.unlock()
    try:
        yield
    finally:
        if not tracker.locked:
            layer._lock_state()


def drop_variable(layer, name):
    """Removes the variable attribute `name` from `layer`, untracked.

    What `del layer.<name>` does in Keras, without the `gc.collect()` it
    runs for every variable (0.2 s each in a process that holds
    TensorFlow: 97% of a widening's time).
    """
    layer._untrack_variable(getattr(layer, name))
    super(keras.layers.Layer, layer).__delattr__(name)


def rebuild(layer, input_shape, configure=None):
    """Rebuilds `layer` for `input_shape`, keeping its values.

    Args:
        layer: A built layer whose variables are attributes (every Keras
            layer with weights, and ours).
        input_shape: The shape to build for.
        configure: Optional function called on the layer, unbuilt,
            before it builds (to change its capacity).
    """
    old = {v.path: keras.ops.convert_to_numpy(v) for v in layer.weights}
    names = [
        name
        for name, value in list(vars(layer).items())
        if isinstance(value, keras.Variable)
    ]
    count = len(layer.weights)
    with unlocked_state(layer):
        for name in names:
            drop_variable(layer, name)
        if layer.weights:
            raise ValueError(
                f"Cannot resize layer {layer.name!r} "
                f"({type(layer).__name__}): it keeps variables outside its "
                "attributes."
            )
        layer.built = False
        if configure is not None:
            configure(layer)
        layer.build(input_shape)
    if len(layer.weights) != count:
        raise ValueError(
            f"Resizing {layer.name!r} changed its number of variables "
            f"from {count} to {len(layer.weights)}."
        )
    for variable in layer.weights:
        if variable.path in old:
            variable.assign(fit_into(old[variable.path], variable))


def fit_into(value, variable):
    """`value` in the leading slice of `variable`'s current value.

    Axes where the new shape is smaller are cut (pruning); axes where it
    is larger keep the variable's own values beyond the old extent.
    """
    target = np.array(keras.ops.convert_to_numpy(variable))
    value = np.asarray(value)
    if value.shape == target.shape:
        return value
    if value.ndim != target.ndim:
        raise ValueError(
            f"Variable {variable.path!r} changed rank: {value.shape} -> "
            f"{target.shape}."
        )
    common = tuple(
        slice(0, min(a, b)) for a, b in zip(value.shape, target.shape)
    )
    target[common] = value[common]
    return target


def weight_decay_exclusions(optimizer):
    """`(paths, pattern)`: what `exclude_from_weight_decay` set, by path.

    Keras keeps the excluded variables by key, and neither they nor the
    name pattern are in the optimizer's config; a rebuilt optimizer needs
    them again (`exclude_weight_decay`).
    """
    keys = getattr(optimizer, "_exclude_from_weight_decay", None) or set()
    variables = getattr(optimizer, "_trainable_variables", [])
    paths = {v.path for v in variables if optimizer._var_key(v) in keys}
    return paths, getattr(optimizer, "_exclude_from_weight_decay_pattern", None)


def exclude_weight_decay(optimizer, variables, paths, pattern):
    """Applies `weight_decay_exclusions` to a new, unbuilt optimizer."""
    if not paths and pattern is None:
        return
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in variables if v.path in paths]
    )
    optimizer._exclude_from_weight_decay_pattern = pattern


def moving_averages(optimizer, variables):
    """`{id(average): variable}` of a built optimizer with `use_ema`."""
    if not getattr(optimizer, "use_ema", False):
        return {}
    averages = optimizer._model_variables_moving_average
    return {id(a): v for a, v in zip(averages, variables)}
