import keras
import numpy as np
import pytest
from conftest import set_execution
from conftest import to_numpy

from keras_andhra import backend
from keras_andhra.layers import AndhraSplit
from keras_andhra.layers import BranchBlock
from keras_andhra.layers import HeadCollector
from keras_andhra.layers import branch_execution
from keras_andhra.layers import stacked_execution

NUM_BRANCHES = 3
L = keras.layers


def conv_sequential():
    return keras.Sequential(
        [
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.BatchNormalization(epsilon=1e-5),
            L.ReLU(),
            L.MaxPooling2D(),
            L.ZeroPadding2D(1),
            L.Conv2D(6, 3, strides=2, use_bias=False),
            L.PReLU(shared_axes=[1, 2]),
            L.GlobalAveragePooling2D(),
            L.Dense(5, activation="tanh"),
            L.Activation("softmax"),
        ]
    )


def residual_functional():
    inputs = keras.Input((8, 8, 4))
    y = L.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    y = L.BatchNormalization()(y)
    y = L.Activation("relu")(y)
    y = L.Conv2D(4, 3, padding="same")(y)
    y = L.Add()([y, inputs])
    y = L.LeakyReLU(0.1)(y)
    y = L.Flatten()(y)
    return keras.Model(inputs, L.Dense(3)(y))


def fallback_functional():
    # LayerNormalization and a raw keras.ops call have no stacked rule:
    # they run one copy per branch inside the stacked execution.
    inputs = keras.Input((8, 8, 4))
    y = L.LayerNormalization()(inputs)
    y = keras.ops.multiply(y, 2.0)
    y = L.Conv2D(2, 1)(y)
    return keras.Model(inputs, L.Softmax()(y))


def sequence_block():
    return keras.Sequential(
        [
            L.Conv1D(5, 3, padding="causal"),
            L.BatchNormalization(),
            L.Activation("gelu"),
            L.Dense(4, activation="sigmoid"),
            L.AveragePooling1D(2),
        ]
    )


BLOCKS = {
    "sequential": (conv_sequential, (8, 8, 4)),
    "residual": (residual_functional, (8, 8, 4)),
    "fallback": (fallback_functional, (8, 8, 4)),
    "sequence": (sequence_block, (6, 4)),
}


def branched_model(builder, shape, execution="loop"):
    inputs = keras.Input(shape)
    branches = AndhraSplit(NUM_BRANCHES)(inputs)
    branches = BranchBlock(builder, execution=execution, name="block")(branches)
    return keras.Model(inputs, HeadCollector()(branches))


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("training", [False, True])
def test_stacked_equals_loop(name, training, rng):
    builder, shape = BLOCKS[name]
    model = branched_model(builder, shape)
    x = rng.normal(size=(4,) + shape).astype("float32")
    state = [to_numpy(v) for v in model.weights]
    reference = to_numpy(model(x, training=training))
    reference_state = [to_numpy(v) for v in model.weights]
    for variable, value in zip(model.weights, state):
        variable.assign(value)
    set_execution(model, "stacked")
    stacked = to_numpy(model(x, training=training))
    np.testing.assert_allclose(stacked, reference, atol=1e-5)
    for got, want in zip([to_numpy(v) for v in model.weights], reference_state):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("name", ["sequential", "residual"])
def test_stacked_training_step_equals_loop(name, rng):
    builder, shape = BLOCKS[name]
    x = rng.normal(size=(8,) + shape).astype("float32")
    y = rng.integers(0, 3, size=(8, NUM_BRANCHES))
    loop = branched_model(builder, shape, execution="loop")
    stacked = branched_model(builder, shape, execution="stacked")
    stacked.set_weights(loop.get_weights())
    for model in (loop, stacked):
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.train_on_batch(x, y)
        model.train_on_batch(x, y)
    for got, want in zip(stacked.get_weights(), loop.get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_copies_never_share_weights():
    model = branched_model(conv_sequential, (8, 8, 4))
    block = model.get_layer("block")
    assert len(block.copies) == NUM_BRANCHES
    ids = [id(v) for copy in block.copies for v in copy.weights]
    assert len(ids) == len(set(ids))
    assert len(block.trainable_weights) == NUM_BRANCHES * len(
        block.copies[0].trainable_weights
    )
    kernels = [to_numpy(copy.layers[0].kernel) for copy in block.copies]
    assert not np.allclose(kernels[0], kernels[1])


def test_layer_block_is_cloned_per_branch():
    dense = L.Dense(3, name="proto")
    block = BranchBlock(dense, name="dense_block")
    outputs = block(AndhraSplit(2)(keras.Input((4,))))
    assert len(outputs) == 2
    assert [c.name for c in block.copies] == [
        "dense_block_copy0",
        "dense_block_copy1",
    ]
    assert all(c is not dense for c in block.copies)


def test_single_tensor_is_one_branch(rng):
    block = BranchBlock(L.Dense(2))
    x = rng.normal(size=(3, 4)).astype("float32")
    y = block(x)
    assert tuple(y.shape) == (3, 2)
    assert len(block.copies) == 1
    assert block.resolved_execution == "loop"


def test_paths_pass_through():
    inputs = keras.Input((4,))
    branches = AndhraSplit(2)(inputs)
    branches = BranchBlock(L.Dense(3))(branches)
    collector = HeadCollector()
    collector(AndhraSplit(2)(branches))
    assert collector.head_names == ["head_00", "head_01", "head_10", "head_11"]


def test_auto_follows_the_measured_table():
    block = BranchBlock(L.Dense(2))
    block(AndhraSplit(2)(keras.Input((4,))))
    assert (
        block.resolved_execution == branch_execution.default_branch_execution(2)
    )
    assert branch_execution.default_branch_execution() in ("loop", "stacked")


def test_channel_threshold_rules(monkeypatch):
    key = (keras.backend.backend(), backend.device_kind())
    monkeypatch.setitem(branch_execution.BRANCH_EXECUTION, key, 4)
    narrow = BranchBlock(L.Dense(4))
    narrow(AndhraSplit(2)(keras.Input((3,))))
    wide = BranchBlock(keras.Sequential([L.Dense(2), L.Dense(8)]))
    wide(AndhraSplit(2)(keras.Input((3,))))
    assert narrow.resolved_execution == "stacked"
    assert wide.resolved_execution == "loop"
    assert stacked_execution.max_channels(conv_sequential()) == 6


def test_unequal_branches_run_the_loop():
    block = BranchBlock(L.Dense(2))
    block([keras.Input((4,)), keras.Input((5,))])
    assert block.resolved_execution == "loop"


def test_stacked_needs_equal_branches():
    block = BranchBlock(L.Dense(2), execution="stacked")
    with pytest.raises(ValueError, match="`execution='stacked'` needs"):
        block([keras.Input((4,)), keras.Input((5,))])


def test_unknown_execution():
    with pytest.raises(ValueError, match="`execution` must be one of"):
        BranchBlock(L.Dense(2), execution="fast")


def test_block_of_wrong_type():
    with pytest.raises(TypeError, match="`block` must be a Keras layer"):
        BranchBlock(3)


def test_builder_must_return_a_layer():
    with pytest.raises(TypeError, match="The `block` function must return"):
        BranchBlock(lambda: "conv")(AndhraSplit(2)(keras.Input((4,))))


def test_rules_cover_the_standard_layers():
    seq = conv_sequential()
    seq.build((None, 8, 8, 4))
    names = [stacked_execution.rule_name(layer) for layer in seq.layers]
    assert "split" not in names
    assert names[0] == "grouped_conv"
    assert names[1] == "wide_batch_norm"
    assert names[-2] == "batched_dense"
    assert stacked_execution.rule_name(L.LayerNormalization()) == "split"


@pytest.mark.parametrize(
    "block, execution",
    [
        (residual_functional, "loop"),
        (residual_functional, "stacked"),
        (L.Dense(3), "auto"),
        (conv_sequential(), "stacked"),
    ],
)
def test_save_and_load(tmp_path, rng, block, execution):
    model = branched_model(block, (8, 8, 4), execution)
    path = str(tmp_path / "block.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.normal(size=(2, 8, 8, 4)).astype("float32")
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(loaded(x)))
    block = loaded.get_layer("block")
    assert block.execution == execution
    assert len(block.copies) == NUM_BRANCHES


@pytest.mark.parametrize("block", [conv_sequential, residual_functional])
def test_every_variable_has_its_own_path(tmp_path, block):
    # Keras on PyTorch registers parameters by path; shared paths would
    # leave some gradients unregistered and never zeroed.
    model = branched_model(block, (8, 8, 4))
    paths = [v.path for v in model.weights]
    assert len(paths) == len(set(paths))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    paths = [v.path for v in loaded.weights]
    assert len(paths) == len(set(paths))
