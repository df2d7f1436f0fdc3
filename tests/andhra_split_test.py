import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_andhra.layers import AndhraSplit
from keras_andhra.layers import HeadCollector


def test_returns_one_activated_copy_per_branch(rng):
    x = rng.normal(size=(4, 5)).astype("float32")
    outputs = AndhraSplit(num_branches=3)(x)
    assert len(outputs) == 3
    for y in outputs:
        np.testing.assert_allclose(to_numpy(y), np.maximum(x, 0.0))


@pytest.mark.parametrize("activation", ["gelu", "tanh", keras.ops.sigmoid])
def test_any_activation_matches_keras(rng, activation):
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    expected = to_numpy(keras.activations.get(activation)(x))
    for y in AndhraSplit(2, activation=activation)(x):
        np.testing.assert_allclose(to_numpy(y), expected, atol=1e-6)


def test_none_activation_copies(rng):
    x = rng.normal(size=(2, 3)).astype("float32")
    outputs = AndhraSplit(2, activation=None)(x)
    for y in outputs:
        np.testing.assert_array_equal(to_numpy(y), x)


def test_splits_nest_parent_major():
    inputs = keras.Input((4,))
    first = AndhraSplit(2)(inputs)
    second = AndhraSplit(3)(first)
    assert len(second) == 6
    collector = HeadCollector()
    heads = collector(second)
    assert heads.shape == (None, 6, 4)
    assert collector.head_names == [
        "head_00",
        "head_01",
        "head_02",
        "head_10",
        "head_11",
        "head_12",
    ]


def test_prelu_gives_each_branch_its_own_slopes(rng):
    layer = AndhraSplit(2, activation="prelu")
    x = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    first, second = layer(x)
    assert len(layer.prelus) == 2
    assert len(layer.trainable_weights) == 2
    assert tuple(layer.prelus[0].alpha.shape) == (1, 1, 3)
    np.testing.assert_allclose(to_numpy(layer.prelus[0].alpha), 0.25)
    layer.prelus[1].alpha.assign(np.full((1, 1, 3), 0.5, "float32"))
    first, second = layer(x)
    np.testing.assert_allclose(
        to_numpy(first), np.where(x > 0, x, 0.25 * x), atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(second), np.where(x > 0, x, 0.5 * x), atol=1e-6
    )


def test_prelu_on_a_list_of_branches_has_one_per_output():
    layer = AndhraSplit(2, activation="prelu")
    inputs = [keras.Input((3, 3, 2)), keras.Input((3, 3, 2))]
    outputs = layer(inputs)
    assert len(outputs) == 4
    assert len(layer.prelus) == 4


def test_compute_output_shape():
    layer = AndhraSplit(2)
    assert layer.compute_output_shape((None, 3)) == [(None, 3), (None, 3)]
    assert layer.compute_output_shape([(None, 3), (None, 3)]) == [(None, 3)] * 4


@pytest.mark.parametrize("num_branches", [0, -2])
def test_num_branches_below_one(num_branches):
    with pytest.raises(ValueError, match="`num_branches` must be at least 1"):
        AndhraSplit(num_branches)


@pytest.mark.parametrize("num_branches", [1.5, "2", True, None])
def test_num_branches_not_an_int(num_branches):
    with pytest.raises(TypeError, match="`num_branches` must be a positive"):
        AndhraSplit(num_branches)


def test_unknown_activation():
    with pytest.raises(ValueError, match="Unknown activation 'relux'"):
        AndhraSplit(2, activation="relux")


def test_activation_of_wrong_type():
    with pytest.raises(TypeError, match="`activation` must be"):
        AndhraSplit(2, activation=3)


def test_prelu_needs_a_channel_axis():
    with pytest.raises(ValueError, match="`AndhraSplit\\(activation='prelu'"):
        AndhraSplit(2, activation="prelu").build((None,))


def test_config_round_trip():
    layer = AndhraSplit(3, activation="gelu", name="split")
    clone = AndhraSplit.from_config(layer.get_config())
    assert clone.num_branches == 3
    assert clone.activation == "gelu"
    assert clone.name == "split"


def test_save_and_load(tmp_path, rng):
    inputs = keras.Input((4, 4, 2))
    branches = AndhraSplit(2, activation="prelu")(inputs)
    outputs = HeadCollector()(branches)
    model = keras.Model(inputs, outputs)
    model.layers[1].prelus[1].alpha.assign(np.full((1, 1, 2), 0.1, "float32"))
    path = str(tmp_path / "split.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.normal(size=(3, 4, 4, 2)).astype("float32")
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(loaded(x)))
    assert loaded.layers[-1].head_names == ["head_0", "head_1"]
