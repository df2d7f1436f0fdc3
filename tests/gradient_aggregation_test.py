import keras
import numpy as np
import pytest
from conftest import set_execution

from keras_andhra import gradients
from keras_andhra import layers
from keras_andhra import models

L = keras.layers
CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def small_model():
    inputs = keras.Input((6,))
    x = L.Dense(8, kernel_regularizer=keras.regularizers.L2(0.01))(inputs)
    branches = layers.AndhraSplit(2)(layers.AndhraSplit(2)(x))
    block = keras.Sequential(
        [L.Dense(5), L.BatchNormalization(), L.ReLU(), L.Dense(3)]
    )
    branches = layers.BranchBlock(block)(branches)
    return models.AndhraModel(inputs, layers.HeadCollector()(branches))


class FirstHead(gradients.GradientAggregator):
    def aggregate(self, head_gradients):
        return list(head_gradients[0])


def train_pair(rng, aggregator, compile_kwargs, execution="loop", steps=2):
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 3, size=(32,))
    plain, aggregated = small_model(), small_model()
    aggregated.set_weights(plain.get_weights())
    histories = []
    for model in (plain, aggregated):
        set_execution(model, execution)
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=CE,
            metrics=["accuracy"],
            **compile_kwargs,
        )
        if model is aggregated:
            model.gradient_aggregator = aggregator
        histories.append(
            model.fit(
                x, y, epochs=steps, batch_size=16, shuffle=False, verbose=0
            ).history
        )
    return plain, aggregated, histories


@pytest.mark.parametrize(
    "aggregator, compile_kwargs",
    [
        (gradients.Mean(), {}),
        (gradients.Sum(), {"head_reduction": "sum"}),
        (gradients.Mean(), {"jit_compile": False}),
        (gradients.Mean(), {"run_eagerly": True}),
    ],
)
def test_sum_and_mean_reproduce_the_plain_update(
    rng, aggregator, compile_kwargs
):
    plain, aggregated, (h1, h2) = train_pair(rng, aggregator, compile_kwargs)
    for a, b in zip(plain.get_weights(), aggregated.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert sorted(h1) == sorted(h2)
    for key in h1:
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-5, atol=1e-6)


def test_stacked_execution_on_the_aggregated_path(rng):
    plain, aggregated, _ = train_pair(
        rng, gradients.Mean(), {}, execution="stacked"
    )
    for a, b in zip(plain.get_weights(), aggregated.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_each_head_gradient_is_that_heads_own(rng):
    # Keeping only head 0's gradient equals training on head 0's loss.
    plain, aggregated, _ = train_pair(
        rng, FirstHead(), {"head_weights": [1.0, 0.0, 0.0, 0.0]}, steps=1
    )
    # Regularisation is added once on both paths; compare all weights.
    for a, b in zip(plain.get_weights(), aggregated.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_aggregator_must_be_a_gradient_aggregator():
    with pytest.raises(TypeError, match="`gradient_aggregator` must be"):
        small_model().gradient_aggregator = "mean"


def test_mixed_precision_on_the_aggregated_path(rng):
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = models.abnet(
            0, num_classes=3, width=4, num_levels=1, input_shape=(8, 8, 1)
        )
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=CE)
        model.gradient_aggregator = gradients.Mean()
        x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
        y = rng.integers(0, 3, size=(32,))
        losses = model.fit(x, y, epochs=3, batch_size=16, verbose=0).history
        losses = losses["loss"]
        assert np.isfinite(losses).all() and losses[-1] < losses[0]
    finally:
        keras.config.set_dtype_policy(policy)


@pytest.mark.parametrize("aggregated", [False, True])
def test_loss_scaling_with_mixed_float16(rng, aggregated):
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = small_model()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=CE)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        if aggregated:
            model.gradient_aggregator = gradients.Mean()
        x = rng.normal(size=(64, 6)).astype("float32")
        y = rng.integers(0, 3, size=(64,))
        losses = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
        losses = losses.history["loss"]
        assert np.isfinite(losses).all() and losses[-1] < losses[0]
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) > 0
    finally:
        keras.config.set_dtype_policy(policy)
