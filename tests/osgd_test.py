"""OSGD and PCGrad against NumPy references, on the active backend.

Each head's gradient is obtained on the plain Keras path (one-hot
`head_weights`, SGD with learning rate 1: the update is the gradient), so
the reference does not depend on the per-head machinery it checks.
"""

import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_andhra import callbacks
from keras_andhra import gradients
from keras_andhra import layers
from keras_andhra import models
from keras_andhra.gradients import gram

L = keras.layers
CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
NUM_HEADS = 4


def tree_model():
    """4 heads: a trunk all share, two blocks two share, private heads."""
    inputs = keras.Input((6,))
    x = L.Dense(8)(inputs)
    branches = layers.AndhraSplit(2)(x)
    branches = layers.BranchBlock(lambda: L.Dense(5))(branches)
    branches = layers.AndhraSplit(2)(branches)
    branches = layers.BranchBlock(lambda: L.Dense(3))(branches)
    return models.AndhraModel(inputs, layers.HeadCollector()(branches))


def data(rng, n=32):
    return (
        rng.normal(size=(n, 6)).astype("float32"),
        rng.integers(0, 3, size=(n,)),
    )


def clone(model, **compile_kwargs):
    copy = tree_model()
    copy.set_weights(model.get_weights())
    copy.compile(optimizer=keras.optimizers.SGD(1.0), loss=CE, **compile_kwargs)
    return copy


def update(model, x, y):
    """The step's update (weights before - after), SGD(1.0): the gradient."""
    before = model.get_weights()
    model.train_on_batch(x, y)
    return [b - a for b, a in zip(before, model.get_weights())]


def head_gradients(model, x, y):
    """Every head's gradient, from the plain path, per variable."""
    result = []
    for head in range(NUM_HEADS):
        weights = [0.0] * NUM_HEADS
        weights[head] = 1.0
        result.append(update(clone(model, head_weights=weights), x, y))
    return result


def reaching(per_head, v):
    return [h for h in range(NUM_HEADS) if np.any(per_head[h][v] != 0)]


def numpy_gram_schmidt(rows, conflicting=False):
    units = []
    for g in rows:
        u = g.copy()
        for earlier in units:
            if conflicting:
                # One at a time, from the remainder, as PCGrad.
                dot = u @ earlier
                if dot < 0:
                    u = u - dot / (earlier @ earlier + 1e-20) * earlier
            else:
                u = u - g @ earlier / (earlier @ earlier + 1e-20) * earlier
        units.append(u)
    return units


def numpy_osgd(per_head, order, weights, conflicting=False):
    update = []
    for v in range(len(per_head[0])):
        heads = [h for h in order if h in reaching(per_head, v)]
        rows = [per_head[h][v].ravel().astype("float64") for h in heads]
        units = numpy_gram_schmidt(rows, conflicting)
        total = sum(weights[h] * u for h, u in zip(heads, units))
        update.append(np.reshape(total, per_head[0][v].shape))
    return update


def assert_updates_close(got, expected, atol=1e-5):
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=atol, rtol=1e-4)


@pytest.mark.parametrize(
    "order, reduction, projection, jit_compile",
    [
        (None, "sum", "always", True),
        ([2, 0, 3, 1], "sum", "always", False),
        (["head_11", "head_00"], "mean", "always", "auto"),
        ([3, 1, 0, 2], "sum", "conflicting", "auto"),
    ],
)
def test_osgd_update_equals_the_numpy_reference(
    rng, order, reduction, projection, jit_compile
):
    model = tree_model()
    x, y = data(rng)
    per_head = head_gradients(model, x, y)
    aggregator = gradients.OSGD(order=order, projection=projection)
    trained = clone(model, head_reduction=reduction, jit_compile=jit_compile)
    trained.gradient_aggregator = aggregator
    got = update(trained, x, y)
    priority = gradients.osgd.resolve_order(order, trained.head_names)
    weights = [1.0 if reduction == "sum" else 1.0 / NUM_HEADS] * NUM_HEADS
    expected = numpy_osgd(
        per_head, priority, weights, projection == "conflicting"
    )
    assert_updates_close(got, expected)


def test_every_u_is_orthogonal_to_the_earlier_ones_and_the_first_passes(rng):
    model = tree_model()
    x, y = data(rng)
    per_head = head_gradients(model, x, y)
    order = [2, 0, 3, 1]
    tensors = [
        [
            keras.ops.convert_to_tensor(g)
            if h in reaching(per_head, v)
            else None
            for v, g in enumerate(grads)
        ]
        for h, grads in enumerate(per_head)
    ]
    units = gradients.OSGD(order=order).project_heads(tensors)
    for v in range(len(per_head[0])):
        heads = [h for h in order if h in reaching(per_head, v)]
        # The highest-priority head that reaches the variable: unchanged.
        np.testing.assert_allclose(
            to_numpy(units[heads[0]][v]), per_head[heads[0]][v], atol=1e-7
        )
        for k, later in enumerate(heads):
            u_k = to_numpy(units[later][v]).ravel()
            for earlier in heads[:k]:
                u_j = to_numpy(units[earlier][v]).ravel()
                scale = np.linalg.norm(u_j) * np.linalg.norm(u_k) + 1e-30
                assert abs(u_j @ u_k) / scale < 1e-4
        for h in set(range(NUM_HEADS)) - set(heads):
            assert units[h][v] is None


def test_global_granularity_uses_the_whole_parameter_vector(rng):
    model = tree_model()
    x, y = data(rng)
    per_head = head_gradients(model, x, y)
    trained = clone(model, head_reduction="sum")
    trained.gradient_aggregator = gradients.OSGD(granularity="global")
    got = update(trained, x, y)
    flat = [np.concatenate([g.ravel() for g in grads]) for grads in per_head]
    units = numpy_gram_schmidt([f.astype("float64") for f in flat])
    expected = np.sum(units, axis=0)
    np.testing.assert_allclose(
        np.concatenate([g.ravel() for g in got]), expected, atol=1e-5
    )


def numpy_pcgrad(per_head, order, global_vector):
    def project(rows, order):
        result = []
        for i, g in enumerate(rows):
            g = g.copy()
            for j in order:
                if j != i and g @ rows[j] < 0:
                    g = g - (g @ rows[j]) / (rows[j] @ rows[j]) * rows[j]
            result.append(g)
        return np.sum(result, axis=0)

    if global_vector:
        flat = [
            np.concatenate([g.ravel() for g in grads]) for grads in per_head
        ]
        return project([f.astype("float64") for f in flat], order)
    pieces = []
    for v in range(len(per_head[0])):
        heads = reaching(per_head, v)
        rows = [per_head[h][v].ravel().astype("float64") for h in heads]
        local = [heads.index(h) for h in order if h in heads]
        pieces.append(project(rows, local))
    return np.concatenate(pieces)


@pytest.mark.parametrize("granularity", ["global", "per_variable"])
def test_pcgrad_matches_its_definition(rng, granularity):
    model = tree_model()
    x, y = data(rng)
    per_head = head_gradients(model, x, y)
    aggregator = gradients.PCGrad(granularity=granularity, seed=3)
    trained = clone(model, head_reduction="sum")
    trained.gradient_aggregator = aggregator
    got = update(trained, x, y)
    # The first step is step 0; the order is the same for every group.
    order = to_numpy(aggregator.order(0, list(range(NUM_HEADS)))).tolist()
    assert sorted(order) == list(range(NUM_HEADS))
    expected = numpy_pcgrad(per_head, order, granularity == "global")
    np.testing.assert_allclose(
        np.concatenate([g.ravel() for g in got]), expected, atol=1e-5
    )


def test_pcgrad_orders_change_from_step_to_step():
    aggregator = gradients.PCGrad()
    orders = {
        tuple(to_numpy(aggregator.order(step, list(range(8)))).tolist())
        for step in range(20)
    }
    assert len(orders) > 10


def test_sum_on_the_per_head_path_is_the_plain_update(rng):
    model = tree_model()
    x, y = data(rng)
    plain = update(clone(model, head_reduction="sum"), x, y)
    summed = clone(model, head_reduction="sum")
    summed.gradient_aggregator = gradients.Sum()
    assert_updates_close(update(summed, x, y), plain)


def test_mixed_precision_surgery_on_unscaled_gradients(rng):
    model = tree_model()
    x, y = data(rng)
    reference = clone(model, head_reduction="sum")
    reference.gradient_aggregator = gradients.OSGD()
    expected = update(reference, x, y)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = tree_model()
        mixed.set_weights(model.get_weights())
        mixed.compile(
            optimizer=keras.optimizers.SGD(1.0), loss=CE, head_reduction="sum"
        )
        assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer)
        mixed.gradient_aggregator = gradients.OSGD()
        got = update(mixed, x, y)
    finally:
        keras.config.set_dtype_policy(policy)
    # A scaled update would be 2**15 times off. float16 compute moves
    # single entries (a pre-activation near 0 can flip its ReLU), so the
    # whole update is compared by length and direction.
    got = np.concatenate([g.ravel() for g in got])
    expected = np.concatenate([e.ravel() for e in expected])
    ratio = np.linalg.norm(got) / np.linalg.norm(expected)
    cosine = got @ expected / (np.linalg.norm(got) * np.linalg.norm(expected))
    assert 0.9 < ratio < 1.1 and cosine > 0.99, (ratio, cosine)


def test_aggregator_survives_save_and_load(rng, tmp_path):
    model = tree_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=CE)
    model.gradient_aggregator = gradients.OSGD(
        order=["head_10"], projection="conflicting"
    )
    x, y = data(rng)
    model.train_on_batch(x, y)
    path = tmp_path / "osgd.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.gradient_aggregator, gradients.OSGD)
    assert loaded.gradient_aggregator.get_config() == (
        model.gradient_aggregator.get_config()
    )
    expected = update(model, x, y)
    assert_updates_close(update(loaded, x, y), expected)


def representation_model():
    inputs = keras.Input((6,))
    x = L.Dense(8, use_bias=False, name="trunk")(inputs)
    branches = layers.AndhraSplit(3, activation=None)(x)
    branches = layers.BranchBlock(lambda: L.Dense(3))(branches)
    return models.AndhraModel(inputs, layers.HeadCollector()(branches))


@pytest.mark.parametrize("order", [None, [2, 0, 1]])
def test_representation_surgery_at_the_split(rng, order):
    model = representation_model()
    x, y = data(rng)
    trained = representation_model()
    trained.set_weights(model.get_weights())
    trained.compile(
        optimizer=keras.optimizers.SGD(1.0), loss=CE, head_reduction="sum"
    )
    trained.gradient_aggregator = gradients.OSGD(
        order=order, granularity="representation"
    )
    history = trained.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    got = [b - a for b, a in zip(model.get_weights(), trained.get_weights())]

    # NumPy: each branch's gradient at the split, orthogonalised in
    # priority order, summed, then back through the trunk.
    weights = model.get_weights()
    trunk = weights[0]
    h = x @ trunk
    onehot = np.eye(3)[y]
    rows = []
    expected = [None]
    for b in range(3):
        kernel, bias = weights[1 + 2 * b], weights[2 + 2 * b]
        logits = h @ kernel + bias
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        d_logits = (p - onehot) / len(x)
        expected += [h.T @ d_logits, d_logits.sum(0)]
        rows.append((d_logits @ kernel.T).ravel().astype("float64"))
    priority = gradients.osgd.resolve_order(order, trained.head_names)
    units = numpy_gram_schmidt([rows[b] for b in priority])
    d_h = np.sum(units, axis=0).reshape(h.shape)
    expected[0] = x.T @ d_h
    assert_updates_close(got, expected)
    assert -1.0 <= history["gradient_cosine"][0] <= 1.0
    assert history["gradient_projected"][0] == pytest.approx(1.0)


def test_diagnostics_are_logged_for_training_only(rng):
    model = tree_model()
    model.compile(optimizer="sgd", loss=CE, metrics=["accuracy"])
    model.gradient_aggregator = gradients.OSGD(projection="conflicting")
    x, y = data(rng, n=64)
    history = model.fit(
        x, y, epochs=2, batch_size=16, validation_data=(x, y), verbose=0
    ).history
    assert "gradient_cosine" in history and "gradient_projected" in history
    assert not any(key.startswith("val_gradient") for key in history)
    assert all(-1.0 <= c <= 1.0 for c in history["gradient_cosine"])
    assert all(0.0 <= p <= 1.0 for p in history["gradient_projected"])
    plain = tree_model()
    plain.compile(optimizer="sgd", loss=CE)
    assert "gradient_cosine" not in plain.fit(x, y, verbose=0).history


def test_bad_arguments():
    with pytest.raises(ValueError, match="`granularity` must be one of"):
        gradients.OSGD(granularity="layer")
    with pytest.raises(ValueError, match="`projection` must be one of"):
        gradients.OSGD(projection="sometimes")
    with pytest.raises(TypeError, match="`order` must be None or a list"):
        gradients.OSGD(order="head_00")
    with pytest.raises(TypeError, match="`order` must be None or a list"):
        gradients.OSGD(order=[True])
    numpy_order = gradients.OSGD(order=np.array([2, 0]))
    assert numpy_order.get_config()["order"] == [2, 0]
    assert all(type(h) is int for h in numpy_order.order)
    with pytest.raises(ValueError, match="`epsilon` must be a non-negative"):
        gradients.PCGrad(epsilon=-1.0)
    with pytest.raises(TypeError, match="`seed` must be an int"):
        gradients.PCGrad(seed=1.5)
    names = ["head_0", "head_1"]
    with pytest.raises(ValueError, match="Unknown head 'head_7' in `order`"):
        gradients.osgd.resolve_order(["head_7"], names)
    with pytest.raises(ValueError, match="Head index 5 in `order` is out"):
        gradients.osgd.resolve_order([5], names)
    with pytest.raises(ValueError, match="is listed twice in `order`"):
        gradients.osgd.resolve_order([0, "head_0"], names)


def test_one_head_model_refuses_a_projecting_aggregator():
    inputs = keras.Input((4,))
    leaves = layers.BranchBlock(L.Dense(3))(layers.AndhraSplit(1)(inputs))
    model = models.AndhraModel(inputs, layers.HeadCollector()(leaves))
    with pytest.raises(ValueError, match="OSGD works between heads"):
        model.gradient_aggregator = gradients.OSGD()
    model.gradient_aggregator = gradients.Sum()  # harmless with one head


def test_layer_losses_reach_the_per_head_step(rng):
    # A size loss (add_loss) in the trunk: the per-head path must add its
    # gradient as the plain path does (JAX once dropped such losses).
    def gated_model():
        inputs = keras.Input((6,))
        x = layers.SizeGatedDense(
            8, activation="tanh", size=3.5, target=6.0, penalty=0.5
        )(inputs)
        branches = layers.AndhraSplit(2)(x)
        branches = layers.BranchBlock(lambda: L.Dense(3))(branches)
        return models.AndhraModel(inputs, layers.HeadCollector()(branches))

    plain, summed = gated_model(), gated_model()
    summed.set_weights(plain.get_weights())
    x, y = data(rng)
    for model in (plain, summed):
        model.compile(
            optimizer=keras.optimizers.SGD(1.0), loss=CE, head_reduction="sum"
        )
    summed.gradient_aggregator = gradients.Sum()
    before = [to_numpy(v) for v in plain.layers[1].weights]
    expected = update(plain, x, y)
    assert_updates_close(update(summed, x, y), expected)
    # The size moved: its gradient includes the size loss's.
    size = plain.layers[1].size
    assert float(to_numpy(size)) != pytest.approx(float(before[2]))


def test_representation_needs_a_split():
    inputs = keras.Input((6,))
    trunk = L.Dense(8)(inputs)
    exits = [L.Dense(3)(trunk), L.Dense(3)(L.Dense(8)(trunk))]
    model = models.AndhraModel(inputs, layers.HeadCollector()(exits))
    with pytest.raises(ValueError, match="Representation-level surgery works"):
        model.gradient_aggregator = gradients.OSGD(granularity="representation")
    model.gradient_aggregator = gradients.OSGD()  # per variable: fine


def test_conflicting_mode_never_turns_a_head_against_itself():
    # g_2 does not conflict with g_1, so u_2 = g_2 is not orthogonal to
    # u_1; removing from g_3 both components measured on g_3 itself
    # would overshoot to u_3 = [1, 0], against g_3.
    rows = np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]], "float32")
    matrix = gram.gram(keras.ops.convert_to_tensor(rows), None, 1)
    coefficients, projected, considered = gram.gram_schmidt(
        matrix, conflicting_only=True, epsilon=1e-20
    )
    units = to_numpy(coefficients)[0] @ rows
    expected = numpy_gram_schmidt(list(rows.astype("float64")), True)
    np.testing.assert_allclose(units, expected, atol=1e-6)
    np.testing.assert_allclose(units[2], [0.5, -0.5], atol=1e-6)
    assert units[2] @ rows[2] >= -1e-6
    assert (float(to_numpy(projected)), considered) == (2.0, 3)


def test_mode_is_a_deprecated_alias_of_projection():
    with pytest.warns(DeprecationWarning, match="use `projection="):
        old = gradients.OSGD(mode="conflicting")
    assert old.projection == "conflicting"
    with pytest.warns(DeprecationWarning, match="use `projection="):
        callback = callbacks.OrthogonalGradients(mode="conflicting")
    assert callback.projection == "conflicting"
    with pytest.raises(TypeError, match="deprecated name of `projection`"):
        with pytest.warns(DeprecationWarning):
            gradients.OSGD(projection="conflicting", mode="always")


class _FromTheStack(models.HeadStep):
    """Each head's loss from its slice of the stacked output."""

    forward_calls = 0

    def forward(self, x, y, sample_weight=None):
        _FromTheStack.forward_calls += 1
        y_pred = self.model(x, training=True)
        leaves = [y_pred[:, k] for k in range(self.model.num_heads)]
        return models.StepOutputs(
            leaves,
            self.model.per_head_losses(y, leaves, sample_weight),
            self.model.regularization_loss(),
        )


class _StackedStepModel(models.AndhraModel):
    def make_head_step(self, aggregator):
        return _FromTheStack(self, aggregator)


def test_a_head_step_subclass_replaces_the_forward_pass(rng):
    model = tree_model()
    x, y = data(rng)
    library = clone(model)
    library.gradient_aggregator = gradients.OSGD(order=[2, 0])
    assert type(library.head_step) is models.HeadStep
    assert library.head_step.needs_head_gradients
    start = model.get_weights()
    # Shares the layers (and weights) of `model`.
    custom = _StackedStepModel(model.input, model.output, name="stacked")
    custom.compile(optimizer=keras.optimizers.SGD(1.0), loss=CE)
    custom.gradient_aggregator = gradients.OSGD(order=[2, 0])
    assert isinstance(custom.head_step, _FromTheStack)
    _FromTheStack.forward_calls = 0
    logs = custom.train_on_batch(x, y, return_dict=True)
    # Traced (or run) at least once: the subclass's forward ran the step.
    assert _FromTheStack.forward_calls >= 1
    assert "head_00_loss" in logs
    expected = update(library, x, y)
    custom.set_weights(start)
    # The same heads' losses through the stack: the same OSGD update.
    assert_updates_close(update(custom, x, y), expected)
    library.gradient_aggregator = None
    assert library.head_step is None
