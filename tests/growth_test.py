"""Growth contracts: widening inside fit keeps the function and the state."""

import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_andhra import callbacks
from keras_andhra import layers
from keras_andhra import models
from keras_andhra.models import head_paths

L = keras.layers


def branched_model():
    """An ANDHRA model whose branch blocks hold a gated layer and BN."""
    inputs = keras.Input((4,))
    branches = layers.AndhraSplit(2)(L.Dense(6)(inputs))
    branches = layers.BranchBlock(
        lambda: keras.Sequential(
            [
                layers.SizeGatedDense(
                    2,
                    activation="tanh",
                    size=1.2,
                    target=5.0,
                    penalty=0.5,
                    name="hidden",
                ),
                L.BatchNormalization(),
                L.Dense(3),
            ]
        ),
        name="block",
    )(branches)
    return models.AndhraModel(inputs, layers.HeadCollector()(branches))


def conv_model():
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            layers.SizeGatedConv2D(
                2,
                3,
                padding="same",
                size=1.2,
                target=5.0,
                penalty=0.5,
                feed_size=True,
                name="gated_conv",
            ),
            L.BatchNormalization(),
            L.ReLU(),
            L.GlobalAveragePooling2D(),
            L.Dense(3),
        ]
    )


class Snapshot(keras.callbacks.Callback):
    """Records outputs and optimizer state at the end of every epoch."""

    def __init__(self, probe):
        super().__init__()
        self.probe = probe
        self.records = []

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        optimizer = model.optimizer
        self.records.append(
            {
                "outputs": to_numpy(model(self.probe, training=False)),
                "slots": {v.path: to_numpy(v) for v in optimizer.variables},
                "iterations": int(to_numpy(optimizer.iterations)),
                "shapes": [tuple(v.shape) for v in model.trainable_variables],
            }
        )


def fit_growing(model, data, epochs=6):
    x, y = data
    probe = x[:8]
    before, after = Snapshot(probe), Snapshot(probe)
    growth = callbacks.DynamicGrowth(grow_at=0.5, growth=2.0)
    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=16,
        callbacks=[before, growth, after],
        verbose=0,
    )
    return history.history, growth, before.records, after.records


@pytest.mark.parametrize("build", [branched_model, conv_model])
def test_widening_inside_fit_keeps_function_and_optimizer_state(
    build, rng, tmp_path
):
    model = build()
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    shape = model.inputs[0].shape[1:]
    x = rng.normal(size=(64,) + tuple(shape)).astype("float32")
    data = (x, rng.integers(0, 3, size=(64,)))
    history, growth, before, after = fit_growing(model, data)

    widened = {event[0] for event in growth.events}
    assert widened, "the size never neared the capacity"
    for epoch, old, new in zip(range(len(before)), before, after):
        # Outputs on a probe batch: unchanged by the widening.
        np.testing.assert_allclose(
            new["outputs"], old["outputs"], atol=1e-6, rtol=0
        )
        assert new["iterations"] == old["iterations"]
        if epoch not in widened:
            continue
        assert new["shapes"] != old["shapes"]
        # Old units' moments kept; new units' moments zero.
        grown = 0
        for path, value in new["slots"].items():
            previous = old["slots"][path]
            common = tuple(slice(0, d) for d in np.shape(previous))
            np.testing.assert_array_equal(value[common], previous)
            if np.shape(value) != np.shape(previous):
                grown += 1
                rest = np.ones(np.shape(value), bool)
                rest[common] = False
                assert np.all(value[rest] == 0)
        assert grown > 0
    # Training goes on: the loss after the last widening keeps falling.
    last = max(widened)
    losses = history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[last]
    for key in ("_size", "_capacity"):
        assert any(k.endswith(key) for k in history)

    # A model saved after growth reloads with its widths, predicts alike.
    path = tmp_path / "grown.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    probe = x[:8]
    np.testing.assert_allclose(
        to_numpy(loaded(probe, training=False)),
        to_numpy(model(probe, training=False)),
        atol=1e-6,
    )
    assert [tuple(v.shape) for v in loaded.weights] == [
        tuple(v.shape) for v in model.weights
    ]

    # Pruned to the active units: same outputs, fewer parameters.
    small = models.prune_to_active(model)
    np.testing.assert_allclose(
        to_numpy(small(probe, training=False)),
        to_numpy(model(probe, training=False)),
        atol=1e-5,
    )
    assert small.count_params() < model.count_params()


def test_widen_layer_by_hand_and_its_errors(rng):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            layers.SizeGatedDense(
                4, activation="tanh", size=2.0, name="hidden"
            ),
            L.Dense(1, name="out"),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="the model's optimizer must be built"):
        models.widen_layer(model, "hidden", 8)
    x = rng.normal(size=(8, 3)).astype("float32")
    model.fit(x, np.zeros((8, 1)), epochs=1, verbose=0)
    before = to_numpy(model(x))
    small = model.count_params()
    assert head_paths.model_cost(model)[0] == small
    seconds = models.widen_layer(model, "hidden", 8)
    assert seconds > 0 and model.layers[0].max_units == 8
    assert model.layers[1].kernel.shape == (8, 1)
    # Costs cached before the widening are not reused after it.
    assert head_paths.model_cost(model)[0] == model.count_params() > small
    np.testing.assert_allclose(to_numpy(model(x)), before, atol=1e-6)
    with pytest.raises(ValueError, match="'out' is not a size-gated layer"):
        models.widen_layer(model, "out", 16)
    with pytest.raises(ValueError, match="needs a capacity above the current"):
        models.widen_layer(model, "hidden", 8)
    with pytest.raises(TypeError, match="`capacity` must be an int"):
        models.widen_layer(model, "hidden", 9.5)


def test_growth_refuses_what_it_cannot_widen(rng):
    x = rng.normal(size=(8, 3)).astype("float32")
    y = np.zeros((8, 4))

    def fit(model, **kwargs):
        model.compile(optimizer="sgd", loss="mse")
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.DynamicGrowth(**kwargs)],
        )

    flattened = keras.Sequential(
        [
            keras.Input((3,)),
            layers.SizeGatedDense(4, name="hidden"),
            L.Reshape((2, 2), name="reshape"),
            L.Flatten(),
        ]
    )
    with pytest.raises(ValueError, match="feeds 'reshape' \\(Reshape\\)"):
        fit(flattened)
    fit(flattened, grow_at=None)  # logging and schedules still work
    controller = keras.Sequential(
        [keras.Input((3,)), layers.SizeGatedDense(4, method="controller")]
    )
    with pytest.raises(ValueError, match="in controller mode the size is"):
        fit(controller)
    squashed = keras.Sequential(
        [
            keras.Input((3,)),
            layers.SizeGatedDense(4),
            L.Activation("sigmoid", name="squash"),
            L.Dense(4),
        ]
    )
    # sigmoid(0) = 0.5: new units would send 0.5 into the reader.
    with pytest.raises(ValueError, match="feeds 'squash' \\(Activation\\)"):
        fit(squashed)

    def own(x):
        return keras.ops.relu(x)

    custom = keras.Sequential(
        [
            keras.Input((3,)),
            layers.SizeGatedDense(4),
            L.Activation(own, name="own"),
            L.Dense(4),
        ]
    )
    # Nothing is known of a user's function: refused, not guessed.
    with pytest.raises(ValueError, match="feeds 'own' \\(Activation\\)"):
        fit(custom)
    plain = keras.Sequential([keras.Input((3,)), L.Dense(4, name="dense")])
    with pytest.raises(ValueError, match="DynamicGrowth needs size-gated"):
        fit(plain)
    gated = keras.Sequential(
        [keras.Input((3,)), layers.SizeGatedDense(4), L.Dense(4, name="d")]
    )
    with pytest.raises(ValueError, match="'d' is not a size-gated layer"):
        fit(gated, layers=["d"])


def test_schedules_set_penalty_and_target_every_epoch(rng):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            layers.SizeGatedDense(9, size=1.0, target=2.0, penalty=0.1),
            L.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            gated = self.model.layers[0]
            seen.append(
                (
                    float(to_numpy(gated.size_penalty)),
                    float(to_numpy(gated.size_target)),
                )
            )

    growth = callbacks.DynamicGrowth(
        penalty=lambda epoch: 0.1 * (epoch + 1), target=4.0, grow_at=None
    )
    x = rng.normal(size=(8, 3)).astype("float32")
    model.fit(
        x, np.zeros((8, 1)), epochs=3, verbose=0, callbacks=[growth, Spy()]
    )
    assert seen == [
        pytest.approx((0.1, 4.0)),
        pytest.approx((0.2, 4.0)),
        pytest.approx((0.3, 4.0)),
    ]


def test_bad_callback_arguments():
    with pytest.raises(ValueError, match="`growth` must be a number above 1"):
        callbacks.DynamicGrowth(growth=1.0)
    with pytest.raises(ValueError, match="`grow_at` must be non-negative"):
        callbacks.DynamicGrowth(grow_at=-1)
    with pytest.raises(ValueError, match="`target` must be non-negative"):
        callbacks.DynamicGrowth(target=-2.0)
    with pytest.raises(ValueError, match="`max_capacity` must be a positive"):
        callbacks.DynamicGrowth(max_capacity=0)


def test_new_optimizer_slots_start_where_the_optimizer_starts(rng):
    # Adagrad's accumulators start at 0.1, not 0 (Ftrl's too: zeros there
    # would give NaN weights).
    model = keras.Sequential(
        [
            keras.Input((3,)),
            layers.SizeGatedDense(4, activation="tanh", size=2.5, name="g"),
            L.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adagrad(0.1), loss="mse")
    x = rng.normal(size=(8, 3)).astype("float32")
    model.fit(x, np.ones((8, 1)), epochs=2, verbose=0)
    old = {v.path: to_numpy(v) for v in model.optimizer.variables}
    models.widen_layer(model, "g", 6)
    for variable in model.optimizer.variables:
        value = to_numpy(variable)
        previous = old.get(variable.path)
        if previous is None or value.shape == previous.shape:
            continue
        common = tuple(slice(0, d) for d in previous.shape)
        np.testing.assert_array_equal(value[common], previous)
        rest = np.ones(value.shape, bool)
        rest[common] = False
        np.testing.assert_allclose(value[rest], 0.1)
    history = model.fit(x, np.ones((8, 1)), epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()


def test_widening_keeps_ema_weight_decay_exclusions_and_parameters(rng):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            layers.SizeGatedDense(4, activation="tanh", size=2.5, name="g"),
            L.Dense(1, name="out"),
        ]
    )
    optimizer = keras.optimizers.AdamW(0.01, weight_decay=0.1, use_ema=True)
    optimizer.exclude_from_weight_decay(var_names=["size"])
    model.compile(optimizer=optimizer, loss="mse")
    x = rng.normal(size=(8, 3)).astype("float32")
    model.fit(x, np.ones((8, 1)), epochs=2, verbose=0)
    models.widen_layer(model, "g", 6)
    optimizer = model.optimizer
    gated = model.get_layer("g")
    # Weight decay still leaves the size alone, and decays the kernel.
    assert not optimizer._use_weight_decay(gated.size)
    assert optimizer._use_weight_decay(gated.kernel)
    # The moving averages of new units start at the units' values.
    averages = dict(
        zip(
            [v.path for v in model.trainable_variables],
            optimizer._model_variables_moving_average,
        )
    )
    kernel = to_numpy(gated.kernel)
    average = to_numpy(averages[gated.kernel.path])
    np.testing.assert_array_equal(average[:, 4:], kernel[:, 4:])
    reader = model.get_layer("out")
    np.testing.assert_array_equal(
        to_numpy(averages[reader.kernel.path])[4:], to_numpy(reader.kernel)[4:]
    )
    # Every registry of the model's variables lists the new ones
    # (PyTorch: `parameters()` and `state_dict()`).
    if keras.backend.backend() == "torch":
        variables = {v.path: tuple(v.shape) for v in model.variables}
        registered = model.named_parameters(remove_duplicate=False)
        for name, parameter in registered:
            path = name.split("_torch_params.")[-1]
            assert tuple(parameter.shape) == variables[path], name
        assert sum(p.numel() for p in model.parameters()) == (
            model.count_params()
        )
    history = model.fit(x, np.ones((8, 1)), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
