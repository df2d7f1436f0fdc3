import warnings

import keras
import numpy as np
import pytest
from conftest import to_numpy

import keras_andhra as ka

SHAPE = (8, 8, 1)


def small_model():
    model = ka.models.abnet(0, width=2, num_levels=2, input_shape=SHAPE)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


@pytest.fixture(scope="module")
def data():
    (x, y), _ = ka.data.load_digits()
    return x[:160], y[:160]


def test_logs_the_best_validation_head_every_epoch(data):
    model = small_model()
    tracker = ka.callbacks.BestHeadCheckpoint(monitor="val_loss")
    history = model.fit(
        *data,
        validation_split=0.25,
        epochs=2,
        batch_size=40,
        callbacks=[tracker],
        verbose=0,
    )
    logs = history.history
    for epoch in range(2):
        losses = [logs[f"val_{h}_loss"][epoch] for h in model.head_names]
        assert logs["best_head_index"][epoch] == int(np.argmin(losses))
        assert tracker.history[epoch] == model.head_names[np.argmin(losses)]
    best = min(
        (logs[f"val_{h}_loss"][e], e, h)
        for e in range(2)
        for h in model.head_names
    )
    assert (tracker.best, tracker.best_epoch, tracker.best_head) == (
        pytest.approx(best[0]),
        best[1],
        best[2],
    )


def test_saves_the_best_head_and_warns_on_a_missing_metric(data, tmp_path):
    model = small_model()
    saver = ka.callbacks.BestHeadCheckpoint(
        # The directory does not exist yet: the callback makes it.
        filepath=str(tmp_path / "heads" / "best_{head}_{epoch}.keras")
    )
    missing = ka.callbacks.BestHeadCheckpoint(monitor="val_auc")
    # Recorded by hand: pytest.warns would re-raise the frameworks' own
    # deprecation warnings that the test configuration ignores.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            *data,
            validation_split=0.25,
            epochs=1,
            batch_size=40,
            callbacks=[saver, missing],
            verbose=0,
        )
    messages = [str(w.message) for w in caught if w.category is UserWarning]
    assert any(
        "'val_head_00_auc'" in m and "Available metrics are: " in m
        for m in messages
    )
    assert missing.history == [] and missing.best_head is None
    path = tmp_path / "heads" / f"best_{saver.best_head}_1.keras"
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = data[0][:8]
    index = model.head_names.index(saver.best_head)
    np.testing.assert_allclose(
        to_numpy(loaded(x)), to_numpy(model(x))[:, index], atol=1e-5
    )


def test_bad_arguments_and_models():
    with pytest.raises(ValueError, match="`mode` must be"):
        ka.callbacks.BestHeadCheckpoint(mode="up")
    with pytest.raises(ValueError, match="`filepath` must end in '.keras'"):
        ka.callbacks.BestHeadCheckpoint(filepath="best.h5")
    with pytest.raises(ValueError, match="`monitor` must be a metric name"):
        ka.callbacks.BestHeadCheckpoint(monitor="")
    callback = ka.callbacks.BestHeadCheckpoint()
    callback.set_model(ka.models.baseline_resnet(0, width=2, input_shape=SHAPE))
    with pytest.raises(ValueError, match="This needs an ANDHRA model"):
        callback.on_train_begin()


def test_a_diverged_head_is_never_the_best():
    model = small_model()
    tracker = ka.callbacks.BestHeadCheckpoint(monitor="val_loss")
    tracker.set_model(model)
    tracker.on_train_begin()
    first, *rest = model.head_names

    def logs(first_value, rest_value):
        values = {f"val_{first}_loss": first_value}
        values.update({f"val_{h}_loss": rest_value for h in rest})
        return values

    tracker.on_epoch_end(0, logs(np.nan, 2.0))
    tracker.on_epoch_end(1, logs(np.nan, 1.0))
    assert tracker.history == [rest[0], rest[0]]
    assert (tracker.best, tracker.best_epoch) == (1.0, 1)
    tracker.on_epoch_end(2, logs(np.nan, np.nan))
    assert tracker.history[-1] is None and tracker.best == 1.0


@pytest.mark.parametrize(
    "monitor, lower",
    [
        ("val_loss", True),
        ("val_mae", True),
        ("mean_squared_error", True),
        ("val_accuracy", False),
        ("val_auc", False),
    ],
)
def test_auto_mode_minimises_losses_and_errors(monitor, lower):
    model = small_model()
    tracker = ka.callbacks.BestHeadCheckpoint(monitor=monitor)
    tracker.set_model(model)
    tracker.on_train_begin()
    prefix = "val_" if monitor.startswith("val_") else ""
    metric = monitor[len(prefix) :]
    values = np.arange(model.num_heads, dtype=float)
    tracker.on_epoch_end(
        0,
        {f"{prefix}{h}_{metric}": v for h, v in zip(model.head_names, values)},
    )
    expected = model.head_names[0 if lower else -1]
    assert tracker.best_head == expected
