"""Widening a size-gated layer inside a model, keeping its function."""

import time

import keras

from keras_andhra import backend
from keras_andhra.growth import optimizer_transplant
from keras_andhra.growth import resizing
from keras_andhra.growth import sites
from keras_andhra.utils import arguments


def widen(model, group, capacity):
    """Widens every site of `group` to `capacity` units, in place.

    The model's optimizer must be built. Returns the seconds it took.
    """
    start = time.perf_counter()
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.built:
        raise ValueError(
            "Widening carries the optimizer's state over, so the model's "
            "optimizer must be built: compile the model and train it (or "
            "call `model.optimizer.build(model.trainable_variables)`) "
            "first."
        )
    for site in group:
        if site.error is not None:
            raise ValueError(f"Cannot widen {site.layer.name!r}: {site.error}.")
        if capacity <= site.layer.capacity:
            raise ValueError(
                f"Widening needs a capacity above the current "
                f"{site.layer.capacity}. Received: capacity={capacity}"
            )
    for site in group:
        resize_site(site, capacity)
    backend.refresh_parameters(model)
    optimizer_transplant.rebuild_optimizer(model, optimizer)
    rebuild_functions(model)
    return time.perf_counter() - start


def resize_site(site, capacity):
    layer = site.layer
    # The gate reads min(size, capacity): a size past the capacity would
    # open the new units at once. Clip it, which changes nothing now.
    size = float(keras.ops.convert_to_numpy(layer.size))
    if size > min(layer.capacity, capacity):
        layer.size.assign(float(min(layer.capacity, capacity)))
    shape = _input_shape(layer)

    def set_capacity(target):
        target.capacity = capacity

    resizing.rebuild(layer, shape, set_capacity)
    for follower, follower_shape in site.followers:
        if follower.weights:
            new_shape = tuple(follower_shape[:-1]) + (capacity,)
            resizing.rebuild(follower, new_shape)


def _input_shape(layer):
    # Only the last axis matters to the gated layers' build; it does not
    # change when the layer widens.
    kernel = layer.kernel
    features = kernel.shape[-2] - int(layer.feed_size)
    return (None,) * (len(kernel.shape) - 1) + (features,)


def rebuild_functions(model):
    """Rebuilds the compiled train, test and predict functions."""
    # Compiled steps captured the old variables (TensorFlow) or shapes.
    for make in (
        "make_train_function",
        "make_test_function",
        "make_predict_function",
    ):
        getattr(model, make)(force=True)


def widen_layer(model, layer, capacity):
    """Widens a size-gated layer of a model in place, keeping its function.

    The layer gets `capacity` units (the old weights copied, new units
    initialised by the layer's initializers and switched off by the gate),
    the layers reading its output get the matching input channels, the
    optimizer's state is carried over (old units' moments kept, new ones
    zero, the iteration count kept) and the model's train, test and
    predict functions are rebuilt. A layer inside a `BranchBlock` copy is
    widened in every copy. `keras_andhra.callbacks.DynamicGrowth` calls
    this during `fit`.

    Args:
        model: A compiled model whose optimizer is built (it has trained,
            or `model.optimizer.build(model.trainable_variables)`).
        layer: A `SizeGatedDense`/`SizeGatedConv2D` of the model, or its
            name.
        capacity: The new number of units, above the current one.

    Returns:
        The seconds the widening took.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_andhra as ka

    model = keras.Sequential([
        keras.Input((3,)),
        ka.layers.SizeGatedDense(4, activation="tanh", size=2.0,
                                 name="hidden"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.rand(8, 3).astype("float32")
    model.fit(x, np.zeros((8, 1)), epochs=1, verbose=0)
    before = model.predict(x, verbose=0)
    ka.models.widen_layer(model, "hidden", 8)
    np.abs(model.predict(x, verbose=0) - before).max()  # 0.0
    ```
    """
    group = sites.group_of(model, layer)
    if not arguments.is_int(capacity):
        raise TypeError(
            f"`capacity` must be an int. Received: capacity={capacity!r}"
        )
    return widen(model, group, capacity)
