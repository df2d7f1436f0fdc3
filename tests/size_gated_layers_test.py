import math

import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_andhra import layers
from keras_andhra import models

L = keras.layers


def numpy_theta(n):
    return np.where(
        n <= 0, 0.0, np.where(n >= 1, 1.0, np.sin(np.pi * n / 2) ** 2)
    )


@pytest.mark.parametrize("size", [0.0, 0.3, 2.5, 4.0, 11.0, -1.0])
def test_paper_gate_against_numpy(size):
    layer = layers.SizeGatedDense(9, activation="tanh", size=size)
    layer.build((None, 3))
    units = np.arange(1, 10)
    expected = numpy_theta(min(size, 9) - units + 1)
    np.testing.assert_allclose(to_numpy(layer.gate()), expected, atol=1e-6)
    assert layer.active_units == int(np.count_nonzero(expected))


@pytest.mark.parametrize("control", [0.0, 0.6, 1.0])
def test_controller_gate_is_the_released_mask(control):
    # The released code's example: c = 0.6 and 4 units give
    # [1, 1, 0.618, 0].
    layer = layers.SizeGatedDense(4, method="controller", size=control)
    layer.build((None, 2))
    s = math.sin(math.pi * control / 2) ** 2 * 4
    k = int(math.floor(s))
    expected = [1.0] * min(k, 4) + [s - k] * (k < 4) + [0.0] * max(0, 3 - k)
    np.testing.assert_allclose(to_numpy(layer.gate()), expected[:4], atol=1e-6)
    assert layer.penalty == 0.32 and layer.target == 1.0


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_dense_output_against_numpy(rng, activation):
    layer = layers.SizeGatedDense(
        6, activation=activation, size=2.5, feed_size=True, name="gated"
    )
    x = rng.normal(size=(5, 3)).astype("float32")
    y = to_numpy(layer(x))
    assert layer.kernel.shape == (4, 6)
    kernel, bias = to_numpy(layer.kernel), to_numpy(layer.bias)
    inputs = np.concatenate([np.full((5, 1), 2.5), x], axis=1)
    gate = numpy_theta(2.5 - np.arange(1, 7) + 1)
    act = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0))
    np.testing.assert_allclose(y, act(inputs @ kernel + bias) * gate, atol=1e-5)
    assert np.all(y[:, 3:] == 0.0)


def test_conv_output_against_keras_conv(rng):
    layer = layers.SizeGatedConv2D(
        8, 3, strides=2, padding="same", activation="relu", size=3.5
    )
    x = rng.normal(size=(2, 9, 9, 4)).astype("float32")
    y = to_numpy(layer(x))
    assert y.shape == (2, 5, 5, 8)
    assert layer.compute_output_shape((2, 9, 9, 4)) == (2, 5, 5, 8)
    reference = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")
    reference.build((None, 9, 9, 4))
    reference.set_weights([to_numpy(layer.kernel), to_numpy(layer.bias)])
    gate = numpy_theta(3.5 - np.arange(1, 9) + 1)
    np.testing.assert_allclose(y, to_numpy(reference(x)) * gate, atol=1e-5)


def test_size_loss_joins_the_model_losses(rng):
    inputs = keras.Input((3,))
    gated = layers.SizeGatedDense(5, size=1.0, target=4.0, penalty=0.1)
    model = keras.Model(inputs, L.Dense(1)(gated(inputs)))
    model(rng.normal(size=(2, 3)).astype("float32"))
    (loss,) = model.losses
    assert float(to_numpy(loss)) == pytest.approx(0.1 * 9.0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_inactive_units_get_exactly_zero_gradient(rng, activation):
    # tanh gates the outputs; relu folds the gate into the weights.
    model = keras.Sequential(
        [
            keras.Input((3,)),
            layers.SizeGatedDense(6, activation=activation, size=2.5),
            L.Dense(2),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    before = [to_numpy(w) for w in model.weights]
    x = rng.normal(size=(16, 3)).astype("float32")
    model.train_on_batch(x, rng.normal(size=(16, 2)).astype("float32"))
    after = [to_numpy(w) for w in model.weights]
    kernel, bias, next_kernel = (0, 1, 5)
    # Units 4..6 are off: their incoming and outgoing weights stay put.
    np.testing.assert_array_equal(after[kernel][:, 3:], before[kernel][:, 3:])
    np.testing.assert_array_equal(after[bias][3:], before[bias][3:])
    np.testing.assert_array_equal(
        after[next_kernel][3:], before[next_kernel][3:]
    )
    assert not np.array_equal(after[kernel][:, :3], before[kernel][:, :3])


def test_the_size_trains_towards_the_target(rng):
    model = keras.Sequential(
        [
            keras.Input((1,)),
            layers.SizeGatedDense(
                9, activation="tanh", size=0.5, target=5.0, penalty=0.1
            ),
            L.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = np.linspace(-1, 1, 32).reshape(-1, 1).astype("float32")
    model.fit(x, np.sin(2 * x), epochs=40, batch_size=32, verbose=0)
    assert 3.5 < model.layers[0].active_size() < 6.0


def test_each_branch_has_its_own_size(rng):
    inputs = keras.Input((4,))
    branches = layers.AndhraSplit(2)(inputs)
    branches = layers.BranchBlock(
        lambda: keras.Sequential(
            [layers.SizeGatedDense(6, activation="tanh", size=3.0), L.Dense(2)]
        )
    )(branches)
    model = models.AndhraModel(inputs, layers.HeadCollector()(branches))
    block = model.layers[2]
    gates = [copy.layers[0] for copy in block.copies]
    assert gates[0].size is not gates[1].size
    gates[1].size.assign(1.0)
    assert [g.active_units for g in gates] == [3, 1]
    x = rng.normal(size=(3, 4)).astype("float32")
    y = to_numpy(model(x))
    hidden = to_numpy(block.copies[1].layers[0](np.abs(x)))
    assert np.all(hidden[:, 1:] == 0.0)
    assert y.shape == (3, 2, 2)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: layers.SizeGatedDense(
            7,
            activation="relu",
            size=2.0,
            target=5.0,
            penalty=0.1,
            feed_size=True,
        ),
        lambda: layers.SizeGatedConv2D(5, (3, 1), padding="same", size=1.5),
        lambda: layers.SizeGatedDense(4, method="controller", size=0.3),
    ],
)
def test_save_and_load(layer, rng, tmp_path):
    gated = layer()
    shape = (6, 6, 2) if isinstance(gated, layers.SizeGatedConv2D) else (3,)
    inputs = keras.Input(shape)
    model = keras.Model(inputs, gated(inputs))
    model.layers[1].size.assign(2.75)
    path = tmp_path / "gated.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.normal(size=(2,) + shape).astype("float32")
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)))
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    assert float(to_numpy(loaded.layers[1].size)) == 2.75


def test_bad_arguments():
    with pytest.raises(ValueError, match="`max_units` must be an int of at"):
        layers.SizeGatedDense(0)
    with pytest.raises(ValueError, match="`max_filters` must be an int of at"):
        layers.SizeGatedConv2D(-2, 3)
    with pytest.raises(ValueError, match="`target` must be a non-negative"):
        layers.SizeGatedDense(4, target=-1.0, penalty=0.1)
    with pytest.raises(ValueError, match="`penalty` must be a non-negative"):
        layers.SizeGatedDense(4, target=1.0, penalty=-0.1)
    with pytest.raises(ValueError, match="A size penalty needs a `target`"):
        layers.SizeGatedDense(4, penalty=0.1)
    with pytest.raises(ValueError, match="`method` must be one of"):
        layers.SizeGatedDense(4, method="nimble")
    with pytest.raises(TypeError, match="`size` must be a number"):
        layers.SizeGatedDense(4, size="2")
    with pytest.raises(ValueError, match="`padding` must be one of"):
        layers.SizeGatedConv2D(4, 3, padding="causal")
    with pytest.raises(ValueError, match="`kernel_size` must be an int or a"):
        layers.SizeGatedConv2D(4, (3, 3, 3))


def test_stacked_execution_matches_the_loop(rng):
    from conftest import set_execution

    def build():
        inputs = keras.Input((3,))
        branches = layers.AndhraSplit(3, activation=None)(inputs)
        branches = layers.BranchBlock(
            lambda: keras.Sequential(
                [
                    layers.SizeGatedDense(
                        5,
                        activation="tanh",
                        size=2.0,
                        target=4.0,
                        penalty=0.2,
                        feed_size=True,
                    ),
                    L.Dense(2),
                ]
            )
        )(branches)
        return models.AndhraModel(inputs, layers.HeadCollector()(branches))

    loop, stacked = build(), build()
    for copy, size in zip(loop.layers[2].copies, (0.5, 2.5, 4.0)):
        copy.layers[0].size.assign(size)
    stacked.set_weights(loop.get_weights())
    set_execution(loop, "loop")
    set_execution(stacked, "stacked")
    assert stacked.layers[2].resolved_execution == "stacked"
    x = rng.normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(stacked(x)), to_numpy(loop(x)), atol=1e-6
    )
    assert sorted(float(to_numpy(v)) for v in stacked.losses) == pytest.approx(
        sorted(float(to_numpy(v)) for v in loop.losses)
    )
    assert len(stacked.losses) == 3


def test_mode_is_a_deprecated_alias_of_method():
    with pytest.warns(DeprecationWarning, match="use `method="):
        layer = layers.SizeGatedDense(4, mode="controller", size=0.3)
    assert layer.method == "controller"
    assert layer.get_config()["method"] == "controller"
    with pytest.warns(DeprecationWarning, match="use `method="):
        conv = layers.SizeGatedConv2D(4, 3, mode="controller")
    assert conv.method == "controller"
