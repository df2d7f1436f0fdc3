import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_andhra import layers
from keras_andhra import models

L = keras.layers
CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def small_model(num_classes=3, regularizer=None):
    inputs = keras.Input((6,))
    x = L.Dense(8, kernel_regularizer=regularizer)(inputs)
    branches = layers.AndhraSplit(2)(layers.AndhraSplit(2)(x))
    branches = layers.BranchBlock(L.Dense(num_classes))(branches)
    return models.AndhraModel(inputs, layers.HeadCollector()(branches))


def data(rng, n=32, num_classes=3):
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, rng.integers(0, num_classes, size=(n,))


def numpy_ce(logits, labels):
    logits = logits - logits.max(-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(log_p, labels[..., None], -1)[..., 0]


def test_head_names_and_count():
    model = small_model()
    assert model.head_names == ["head_00", "head_01", "head_10", "head_11"]
    assert model.num_heads == 4
    assert isinstance(
        models.abnet(0, width=4, input_shape=(8, 8, 1)), models.AndhraModel
    )


def test_needs_a_head_collector():
    inputs = keras.Input((3,))
    model = models.AndhraModel(inputs, L.Dense(2)(inputs))
    with pytest.raises(ValueError, match="An AndhraModel needs a"):
        model.num_heads


@pytest.mark.parametrize(
    "reduction, weights",
    [("mean", None), ("sum", None), ("mean", [1, 0, 2, 0])],
)
def test_loss_combines_the_head_losses(rng, reduction, weights):
    model = small_model()
    model.compile(loss=CE, head_reduction=reduction, head_weights=weights)
    x, y = data(rng)
    logits = to_numpy(model(x))
    per_head = numpy_ce(logits, np.repeat(y[:, None], 4, 1)).mean(0)
    if weights is not None:
        expected = (per_head * np.array(weights)).sum()
    elif reduction == "sum":
        expected = per_head.sum()
    else:
        expected = per_head.mean()
    loss = model.compute_loss(x, y, model(x))
    np.testing.assert_allclose(to_numpy(loss), expected, rtol=1e-5)


def test_per_head_and_one_hot_labels(rng):
    model = small_model()
    model.compile(loss=CE)
    x, _ = data(rng)
    y_heads = rng.integers(0, 3, size=(32, 4))
    logits = to_numpy(model(x))
    expected = numpy_ce(logits, y_heads).mean()
    got = model.compute_loss(x, y_heads, model(x))
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5)
    model.compile(loss="categorical_crossentropy")
    y = rng.integers(0, 3, size=(32,))
    probs = to_numpy(keras.ops.softmax(model(x)))
    one_hot = np.eye(3, dtype="float32")[y]
    shared = to_numpy(model.compute_loss(x, one_hot, probs))
    model.compile(loss="categorical_crossentropy", head_labels="per_head")
    per_head = np.repeat(one_hot[:, None], 4, 1)
    np.testing.assert_allclose(
        to_numpy(model.compute_loss(x, per_head, probs)), shared, rtol=1e-5
    )
    expected = -np.log(
        np.take_along_axis(probs, np.repeat(y[:, None, None], 4, 1), -1)
    ).mean()
    np.testing.assert_allclose(shared, expected, rtol=1e-5)


def test_labels_with_a_trailing_one_and_sample_weights(rng):
    model = small_model()
    model.compile(loss=CE)
    x, y = data(rng)
    w = rng.random(32).astype("float32")
    logits = to_numpy(model(x))
    expected = numpy_ce(logits, np.repeat(y[:, None], 4, 1)) * w[:, None]
    got = model.compute_loss(x, y[:, None], model(x), sample_weight=w)
    np.testing.assert_allclose(to_numpy(got), expected.mean(), rtol=1e-5)


def test_regularisation_is_added_once(rng):
    model = small_model(regularizer=keras.regularizers.L2(0.1))
    model.compile(loss=CE)
    x, y = data(rng)
    plain = small_model()
    plain.set_weights(model.get_weights())
    plain.compile(loss=CE)
    difference = to_numpy(model.compute_loss(x, y, model(x))) - to_numpy(
        plain.compute_loss(x, y, plain(x))
    )
    penalty = 0.1 * (to_numpy(model.layers[1].kernel) ** 2).sum()
    np.testing.assert_allclose(difference, penalty, rtol=1e-4)


def test_logs_have_stable_keys_and_true_values(rng):
    model = small_model()
    model.compile(optimizer="sgd", loss=CE, metrics=["accuracy"])
    x, y = data(rng, n=40)
    logs = model.evaluate(x, y, batch_size=40, verbose=0, return_dict=True)
    heads = model.head_names
    assert sorted(logs) == sorted(
        ["loss", "best_accuracy", "ensemble_accuracy"]
        + [f"{h}_accuracy" for h in heads]
        + [f"{h}_loss" for h in heads]
    )
    logits = to_numpy(model(x))
    predicted = logits.argmax(-1)
    accuracy = (predicted == y[:, None]).mean(0)
    for index, head in enumerate(heads):
        assert logs[f"{head}_accuracy"] == pytest.approx(accuracy[index])
        assert logs[f"{head}_loss"] == pytest.approx(
            numpy_ce(logits[:, index], y).mean(), rel=1e-5
        )
    assert logs["best_accuracy"] == pytest.approx(accuracy.max())
    votes = np.stack([np.bincount(p, minlength=3) for p in predicted])
    assert logs["ensemble_accuracy"] == pytest.approx(
        (votes.argmax(-1) == y).mean()
    )


def test_majority_vote_ties_go_to_the_smallest_class():
    # Four heads vote 2, 2, 1, 1 on one sample: the vote goes to class 1.
    inputs = keras.Input((4, 3))
    branches = [L.Lambda(lambda t, i=i: t[:, i])(inputs) for i in range(4)]
    model = models.AndhraModel(
        inputs, layers.HeadCollector(head_names=list("abcd"))(branches)
    )
    model.compile(loss=CE, metrics=["accuracy"])
    logits = np.eye(3, dtype="float32")[[2, 2, 1, 1]][None]
    logs = model.evaluate(logits, np.array([1]), verbose=0, return_dict=True)
    assert logs["ensemble_accuracy"] == 1.0
    assert logs["best_accuracy"] == 1.0 and logs["a_accuracy"] == 0.0


def test_other_metrics_run_per_head(rng):
    model = small_model()
    model.compile(
        loss=CE,
        metrics=[keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2")],
    )
    x, y = data(rng)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    logits = to_numpy(model(x))
    # Keras's top-k rule: ties count as hits. Ties are real here: an input
    # whose dense features are all negative leaves every head's logits 0
    # after the split's ReLU.
    at_label = np.take_along_axis(logits, y[:, None, None], -1)
    expected = ((logits > at_label).sum(-1) < 2).mean(0)
    for index, head in enumerate(model.head_names):
        assert logs[f"{head}_top2"] == pytest.approx(expected[index])


@pytest.mark.parametrize(
    "options", [dict(), dict(jit_compile=False), dict(run_eagerly=True)]
)
def test_fit_with_validation_and_early_stopping(rng, options):
    model = small_model()
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=CE,
        metrics=["accuracy"],
        **options,
    )
    x, y = data(rng, n=64)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_best_accuracy", mode="max", patience=50
    )
    history = model.fit(
        x,
        y,
        validation_split=0.25,
        epochs=4,
        batch_size=16,
        verbose=0,
        callbacks=[stop],
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "val_ensemble_accuracy" in history.history
    assert "val_head_11_loss" in history.history


def test_save_load_keeps_predictions_and_training_state(tmp_path, rng):
    model = models.abnet(
        0, num_classes=3, width=4, num_levels=1, input_shape=(8, 8, 1)
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=CE, metrics=["accuracy"]
    )
    x = rng.normal(size=(16, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, size=(16,))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = str(tmp_path / "abnet.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, models.AndhraModel)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    )
    assert int(to_numpy(loaded.optimizer.iterations)) == 2
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), loaded.predict(x, verbose=0), atol=1e-5
    )


def test_labels_that_fit_no_head(rng):
    model = small_model()
    model.compile(loss=CE)
    x, _ = data(rng)
    with pytest.raises(ValueError, match="Labels of shape"):
        model.compute_loss(x, np.zeros((32, 5), "int64"), model(x))


def test_ambiguous_labels_ask_for_a_choice(rng):
    model = small_model(num_classes=4)
    model.compile(loss="categorical_crossentropy")
    x, _ = data(rng)
    with pytest.raises(ValueError, match="fit both as one label"):
        model.compute_loss(x, np.zeros((32, 4), "float32"), model(x))


def test_loss_list_is_refused():
    model = small_model()
    with pytest.raises(ValueError, match="applies one loss to every head"):
        model.compile(loss=[CE] * 4)


def test_missing_loss():
    with pytest.raises(ValueError, match="needs a `loss`"):
        small_model().compile(optimizer="sgd")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(head_weights=[1.0, 2.0]), "`head_weights` needs one weight"),
        (dict(head_reduction="max"), "`head_reduction` must be one of"),
        (dict(head_labels="both"), "`head_labels` must be one of"),
    ],
)
def test_bad_compile_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_model().compile(loss=CE, **kwargs)


def test_loss_weights_and_unreduced_losses_are_refused():
    with pytest.raises(ValueError, match="with `head_weights`.*not `loss_w"):
        small_model().compile(loss=CE, loss_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="the loss needs a reduction"):
        small_model().compile(
            loss=keras.losses.MeanSquaredError(reduction=None)
        )


@pytest.mark.parametrize(
    "reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"]
)
@pytest.mark.parametrize("weights", [None, "per_sample", "per_step"])
def test_head_losses_reduce_as_keras_reduces_each_head(rng, reduction, weights):
    inputs = keras.Input((5, 3))
    branches = layers.AndhraSplit(2)(L.Dense(4)(inputs))
    branches = layers.BranchBlock(L.Dense(2))(branches)
    model = models.AndhraModel(inputs, layers.HeadCollector()(branches))
    loss = keras.losses.MeanSquaredError(reduction=reduction)
    model.compile(optimizer="sgd", loss=loss, head_reduction="sum")
    x = rng.normal(size=(6, 5, 3)).astype("float32")
    y = rng.normal(size=(6, 5, 2)).astype("float32")
    sample_weight = {
        None: None,
        "per_sample": rng.random(6).astype("float32"),
        "per_step": rng.random((6, 5)).astype("float32"),
    }[weights]
    outputs = model(x)
    # Keras on one head: per-sample weights of a per-step loss broadcast
    # over the steps.
    keras_weight = sample_weight
    if weights == "per_sample":
        keras_weight = sample_weight[:, None]
    expected = sum(
        float(to_numpy(loss(y, outputs[:, h], sample_weight=keras_weight)))
        for h in range(2)
    )
    got = model.compute_loss(x, y, outputs, sample_weight)
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5)
    if weights == "per_step":
        model.fit(x, y, sample_weight=sample_weight, epochs=1, verbose=0)


def test_fit_before_compile(rng):
    x, y = data(rng)
    with pytest.raises(ValueError, match="compile"):
        small_model().fit(x, y, verbose=0)


@pytest.fixture
def mixed_bfloat16():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(policy)


@pytest.mark.parametrize("aggregator", [None, "mean"])
def test_first_fit_traces_the_step_once(rng, aggregator):
    # TensorFlow traces a `tf.function` twice when its first trace
    # creates variables: the optimizer's slots are made before it.
    from keras_andhra import gradients

    model = small_model()
    model.compile(optimizer="adam", loss=CE)
    if aggregator:
        model.gradient_aggregator = gradients.Mean()
    calls = []
    step = model.train_step

    def counted(*args):  # JAX's step also takes the state
        calls.append(1)
        return step(*args)

    model.train_step = counted
    x, y = data(rng, n=8)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert len(calls) == 1
    assert model.optimizer.built


def test_mixed_precision_trains(rng, mixed_bfloat16):
    model = models.abnet(
        0, num_classes=3, width=4, num_levels=1, input_shape=(8, 8, 1)
    )
    assert model.output.dtype == "bfloat16"
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=CE, metrics=["accuracy"]
    )
    x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, size=(32,))
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_a_nan_head_gives_nan_loss_and_terminate_on_nan_stops(rng):
    # NaN inputs are refused before training (tests/bad_input_test.py); a
    # NaN weight in one head's layer makes the loss NaN from inside. The
    # NaN sits after any ReLU: TensorFlow's graph optimiser fuses a Dense's
    # matmul with a following ReLU into a oneDNN kernel that maps NaN to 0
    # (plain Keras models do the same), which would hide it.
    inputs = keras.Input((6,))
    branches = layers.AndhraSplit(2)(layers.AndhraSplit(2)(inputs))
    block = layers.BranchBlock(L.Dense(3))
    model = models.AndhraModel(inputs, layers.HeadCollector()(block(branches)))
    model.compile(optimizer="sgd", loss=CE, metrics=["accuracy"])
    weights = block.get_weights()
    weights[0].flat[0] = np.nan
    block.set_weights(weights)
    x, y = data(rng)
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=32,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    assert len(history.history["loss"]) == 1
    assert np.isnan(history.history["loss"][0])


def test_sequence_heads_average_over_time(rng):
    inputs = keras.Input((5, 4))
    branches = layers.AndhraSplit(2)(inputs)
    branches = layers.BranchBlock(L.Dense(3))(branches)
    model = models.AndhraModel(inputs, layers.HeadCollector()(branches))
    model.compile(loss=CE)
    x = rng.normal(size=(6, 5, 4)).astype("float32")
    y = rng.integers(0, 3, size=(6, 5))
    logits = to_numpy(model(x))
    expected = numpy_ce(logits, np.repeat(y[:, None], 2, 1)).mean()
    got = model.compute_loss(x, y, model(x))
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5)


def test_loss_given_as_a_function(rng):
    def head_loss(y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=True
        )

    model = small_model()
    model.compile(loss=head_loss)
    x, y = data(rng)
    logits = to_numpy(model(x))
    expected = numpy_ce(logits, np.repeat(y[:, None], 4, 1)).mean()
    got = model.compute_loss(x, y, model(x))
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5)


def test_model_checkpoint_on_the_best_head(tmp_path, rng):
    model = small_model()
    model.compile(optimizer="adam", loss=CE, metrics=["accuracy"])
    x, y = data(rng, n=64)
    path = str(tmp_path / "best.keras")
    checkpoint = keras.callbacks.ModelCheckpoint(
        path, monitor="val_best_accuracy", mode="max", save_best_only=True
    )
    model.fit(
        x,
        y,
        validation_split=0.25,
        epochs=2,
        verbose=0,
        callbacks=[checkpoint],
    )
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.head_names == model.head_names
