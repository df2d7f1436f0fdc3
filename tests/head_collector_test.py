import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_andhra.layers import AndhraSplit
from keras_andhra.layers import BranchBlock
from keras_andhra.layers import HeadCollector


def test_stacks_leaves_on_axis_one(rng):
    leaves = [rng.normal(size=(5, 3)).astype("float32") for _ in range(4)]
    heads = HeadCollector(head_names=list("abcd"))(leaves)
    np.testing.assert_array_equal(to_numpy(heads), np.stack(leaves, axis=1))


def test_names_follow_branch_paths():
    inputs = keras.Input((6,))
    branches = AndhraSplit(2)(inputs)
    branches = BranchBlock(keras.layers.Dense(3))(branches)
    branches = AndhraSplit(2)(branches)
    collector = HeadCollector()
    collector(branches)
    assert collector.head_names == ["head_00", "head_01", "head_10", "head_11"]
    assert collector.num_heads == 4


def test_wide_splits_use_separators():
    inputs = keras.Input((2,))
    collector = HeadCollector()
    collector(AndhraSplit(2)(AndhraSplit(11)(inputs)))
    assert collector.head_names[:2] == ["head_0_0", "head_0_1"]
    assert len(set(collector.head_names)) == 22
    assert "head_10_1" in collector.head_names


def test_unsplit_tensor_is_head():
    collector = HeadCollector()
    out = collector(keras.Input((3,)))
    assert out.shape == (None, 1, 3)
    assert collector.head_names == ["head"]


def test_explicit_names_are_kept():
    collector = HeadCollector(head_names=["left", "right"])
    collector(AndhraSplit(2)(keras.Input((3,))))
    assert collector.head_names == ["left", "right"]


def test_duplicate_names():
    with pytest.raises(ValueError, match="`head_names` must be unique"):
        HeadCollector(head_names=["a", "a"])


def test_names_not_strings():
    with pytest.raises(TypeError, match="`head_names` must be a list"):
        HeadCollector(head_names="ab")


def test_wrong_number_of_names():
    with pytest.raises(ValueError, match="`head_names` has 3 names"):
        HeadCollector(head_names=["a", "b", "c"])(
            AndhraSplit(2)(keras.Input((3,)))
        )


def test_heads_of_different_shapes():
    with pytest.raises(ValueError, match="All heads collected"):
        HeadCollector()([keras.Input((3,)), keras.Input((4,))])


def test_config_round_trip():
    layer = HeadCollector(head_names=["x", "y"], name="heads")
    clone = HeadCollector.from_config(layer.get_config())
    assert clone.head_names == ["x", "y"]
    assert clone.name == "heads"
