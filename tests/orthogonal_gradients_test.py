import warnings

import keras
import numpy as np
import pytest

from keras_andhra import callbacks
from keras_andhra import gradients
from keras_andhra import layers
from keras_andhra import models

L = keras.layers
CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def tree_model(num_branches=2):
    inputs = keras.Input((6,))
    x = L.Dense(8)(inputs)
    branches = layers.AndhraSplit(num_branches)(x)
    branches = layers.BranchBlock(lambda: L.Dense(3))(branches)
    model = models.AndhraModel(inputs, layers.HeadCollector()(branches))
    model.compile(optimizer="sgd", loss=CE, metrics=["accuracy"])
    return model


@pytest.fixture
def data(rng):
    x = rng.normal(size=(64, 6)).astype("float32")
    return x, rng.integers(0, 3, size=(64,))


class Spy(keras.callbacks.Callback):
    """Records the aggregator in force and the logs of every epoch."""

    def on_train_begin(self, logs=None):
        self.aggregators, self.logs = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.aggregators.append(self.model.gradient_aggregator)

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))


def test_sets_osgd_in_head_order_and_restores_the_model(data):
    model = tree_model()
    osgd, spy = callbacks.OrthogonalGradients(), Spy()
    history = model.fit(
        *data, epochs=2, batch_size=16, callbacks=[osgd, spy], verbose=0
    ).history
    assert all(isinstance(a, gradients.OSGD) for a in spy.aggregators)
    assert spy.aggregators[0].order == ["head_0", "head_1"]
    assert osgd.history == [["head_0", "head_1"]] * 2
    assert "gradient_cosine" in history
    assert model.gradient_aggregator is None


def test_explicit_order_and_start_epoch(data):
    model = tree_model(num_branches=3)
    osgd = callbacks.OrthogonalGradients(
        order=["head_2"], start_epoch=1, projection="conflicting"
    )
    spy = Spy()
    history = model.fit(
        *data, epochs=3, batch_size=16, callbacks=[osgd, spy], verbose=0
    ).history
    assert spy.aggregators[0] is None
    assert spy.aggregators[1].order == ["head_2", "head_0", "head_1"]
    assert spy.aggregators[1].projection == "conflicting"
    assert osgd.history[0] is None
    assert "gradient_cosine" not in spy.logs[0]
    assert "gradient_cosine" in spy.logs[1]
    assert len(history["loss"]) == 3


def test_rank_order_follows_the_validation_metric(data):
    model = tree_model(num_branches=3)
    osgd = callbacks.OrthogonalGradients(order="rank", monitor="val_loss")
    spy = Spy()
    model.fit(
        *data,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        callbacks=[osgd, spy],
        verbose=0,
    )
    assert osgd.history[0] == ["head_0", "head_1", "head_2"]
    for epoch in (1, 2):
        losses = [
            spy.logs[epoch - 1][f"val_{h}_loss"] for h in model.head_names
        ]
        expected = [
            model.head_names[i] for i in np.argsort(losses, kind="stable")
        ]
        assert osgd.history[epoch] == expected
        assert spy.aggregators[epoch].order == expected


def test_missing_metric_warns_listing_the_metrics(data):
    model = tree_model()
    osgd = callbacks.OrthogonalGradients(order="rank", monitor="val_f1")
    # Recorded rather than pytest.warns: that re-raises PyTorch's own
    # NumPy deprecation noise from the same fit.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            *data, epochs=1, validation_split=0.25, callbacks=[osgd], verbose=0
        )
    messages = [str(w.message) for w in caught]
    assert any(
        "'val_head_0_f1'" in m
        and "Available metrics are:" in m
        and "val_head_0_loss" in m
        for m in messages
    ), messages
    assert osgd.priority == ["head_0", "head_1"]


def test_bad_orders_and_models(data):
    with pytest.raises(ValueError, match="`order` must be None, a list"):
        callbacks.OrthogonalGradients(order="best")
    with pytest.raises(
        ValueError, match="`start_epoch` must be a non-negative"
    ):
        callbacks.OrthogonalGradients(start_epoch=-1)
    with pytest.raises(ValueError, match="`granularity` must be one of"):
        callbacks.OrthogonalGradients(granularity="layer")
    with pytest.raises(ValueError, match="`metric_mode` must be one of"):
        callbacks.OrthogonalGradients(metric_mode="up")
    with pytest.raises(ValueError, match="Unknown head 'head_9' in `order`"):
        tree_model().fit(
            *data,
            epochs=1,
            callbacks=[callbacks.OrthogonalGradients(order=["head_9"])],
            verbose=0,
        )
    inputs = keras.Input((6,))
    plain = keras.Model(inputs, L.Dense(3)(inputs))
    plain.compile(optimizer="sgd", loss=CE)
    with pytest.raises(
        TypeError, match="OrthogonalGradients needs a keras_andh"
    ):
        plain.fit(
            *data,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.OrthogonalGradients()],
        )
    one = tree_model(num_branches=1)
    with pytest.raises(ValueError, match="this model has one \\('head'\\)"):
        one.fit(
            *data,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.OrthogonalGradients()],
        )
