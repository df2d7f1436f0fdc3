"""Fence: running a functional model's graph with each operation swapped.

Stacked execution runs a functional block's graph with every layer
replaced by its stacked form, on real tensors inside `call`; head walking
runs a network's graph with every layer replaced. Keras has no public way
to run a functional graph with swapped operations on real tensors
(`keras.models.clone_model(call_function=...)` rebuilds a symbolic model
instead); `Functional.call` itself does it through one private method
(`_run_through_graph`), used here and nowhere else.
tests/compat_test.py fails loudly, naming this module, if Keras changes it.
"""

import keras


def is_functional(layer):
    """True for a functional `keras.Model` (not a Sequential)."""
    return (
        isinstance(layer, keras.Model)
        and not isinstance(layer, keras.Sequential)
        and hasattr(layer, "_run_through_graph")
        and hasattr(layer, "operations")
        and getattr(layer, "inputs", None) is not None
    )


def run_graph(model, inputs, operation_fn):
    """Runs `model`'s graph on `inputs`, calling `operation_fn(op)(...)`.

    Args:
        model: A functional `keras.Model`.
        inputs: Values for the model's inputs, in its input structure.
        operation_fn: Maps each operation of the graph to the callable
            that runs in its place.

    Returns:
        The values of the model's outputs, in its output structure.
    """
    return model._run_through_graph(inputs, operation_fn=operation_fn)
