"""Fence: giving a built layer variables of other shapes (growth).

Keras locks a layer's state after `build()` and has no public way to give
a built layer variables of another shape. This module is the one place in
keras_andhra that reaches past it: the layer's `_tracker` (its lock),
`_lock_state` and `_untrack_variable`. tests/compat_test.py fails loudly,
naming this module, if Keras changes them.
"""

import contextlib

import keras


@contextlib.contextmanager
def unlocked_state(layer):
    """Lets a built layer create variables again, then locks it."""
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
