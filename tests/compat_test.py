"""Canaries for the private Keras API behind keras_andhra.compat's fences.

Each test fails with a message naming the fence module to update when a
Keras release renames or changes what it relies on.
"""

import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_andhra.compat import functional_graph
from keras_andhra.compat import layer_state
from keras_andhra.compat import optimizer_state

L = keras.layers


def fence(module, what):
    return (
        f"Keras changed {what}: update keras_andhra/compat/{module}.py "
        "(see its docstring), the only place that relies on it."
    )


def residual_functional():
    inputs = keras.Input((4, 4, 2))
    x = L.Conv2D(3, 3, padding="same")(inputs)
    x = L.BatchNormalization()(x)
    y = L.Conv2D(3, 1)(inputs)
    return keras.Model(inputs, L.Add()([L.ReLU()(x), y]))


def test_functional_graph_runs_with_swapped_operations():
    model = residual_functional()
    assert callable(getattr(model, "_run_through_graph", None)), fence(
        "functional_graph", "Functional._run_through_graph"
    )
    called = []

    def operation_fn(op):
        called.append(op)
        return op

    x = np.ones((2, 4, 4, 2), "float32")
    out = functional_graph.run_graph(model, x, operation_fn)
    np.testing.assert_allclose(
        to_numpy(out),
        to_numpy(model(x)),
        atol=1e-6,
        err_msg=fence("functional_graph", "how the graph runner calls ops"),
    )
    assert len(called) == len(model.operations) - 1  # all but the input


def test_layer_state_lock_can_be_lifted_and_variables_dropped():
    layer = L.Dense(2)
    layer.build((None, 3))
    message = fence("layer_state", "the layer state lock (_tracker)")
    assert hasattr(layer, "_tracker") and layer._tracker.locked, message
    with pytest.raises(ValueError, match="cannot add new elements of state"):
        layer.add_weight(shape=(1,), name="extra")
    with layer_state.unlocked_state(layer):
        layer.add_weight(shape=(1,), name="extra")
    assert layer._tracker.locked and len(layer.weights) == 3, message
    bias = layer.bias
    layer_state.drop_variable(layer, "bias")
    assert all(w is not bias for w in layer.weights), fence(
        "layer_state", "_untrack_variable"
    )
    assert not hasattr(layer, "bias")


def test_optimizer_state_exclusions_and_averages_are_readable():
    dense = L.Dense(2)
    dense.build((None, 3))
    optimizer = keras.optimizers.AdamW(use_ema=True)
    optimizer.exclude_from_weight_decay(
        var_list=[dense.bias], var_names=["kernel_x"]
    )
    optimizer.build(dense.trainable_variables)
    paths, pattern = optimizer_state.weight_decay_exclusions(optimizer)
    assert paths == {dense.bias.path}, fence(
        "optimizer_state", "how excluded variables are kept (_var_key)"
    )
    assert pattern is not None, fence(
        "optimizer_state", "_exclude_from_weight_decay_pattern"
    )
    averages = optimizer_state.moving_averages(
        optimizer, dense.trainable_variables
    )
    assert len(averages) == 2, fence(
        "optimizer_state", "_model_variables_moving_average"
    )
    fresh = keras.optimizers.AdamW()
    optimizer_state.exclude_weight_decay(
        fresh, dense.trainable_variables, paths, pattern
    )
    fresh.build(dense.trainable_variables)
    assert optimizer_state.weight_decay_exclusions(fresh)[0] == paths


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="the parameter registry is PyTorch's",
)
def test_torch_parameter_registry_can_be_refreshed():
    from keras_andhra import backend

    layer = L.Dense(2)
    layer.build((None, 3))
    message = (
        "Keras changed how it registers PyTorch parameters (_torch_params, "
        "_track_variables): update refresh_parameters in "
        "keras_andhra/backend/torch.py."
    )
    assert hasattr(layer, "_torch_params"), message
    before = {id(p) for p in layer.parameters()}
    backend.refresh_parameters(layer)
    assert {id(p) for p in layer.parameters()} == before, message
