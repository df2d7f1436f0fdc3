"""Rebuilding a built layer with other shapes, keeping its values.

Growth changes variable shapes: a size-gated layer gets more units, the
layers that read its output more input channels. Keras variables cannot
change shape, so the layer's variables are replaced: the old ones are
removed and untracked (`keras_andhra.compat.layer_state`), the layer
builds anew for the new shapes, and every old value is copied into the
leading slice of its new variable, matched by path. What lies beyond the
old shape keeps the fresh initialisation.
"""

import keras
import numpy as np

from keras_andhra.compat import layer_state


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
    with layer_state.unlocked_state(layer):
        for name in names:
            layer_state.drop_variable(layer, name)
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
