import keras
import numpy as np
import pytest
from conftest import set_execution
from conftest import to_numpy

from keras_andhra import models
from keras_andhra.layers import AndhraSplit
from keras_andhra.layers import BranchBlock

SMALL = dict(width=4, input_shape=(8, 8, 3))


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


# Parameter counts of the reference code at width 64 on CIFAR-10
# (reference/papers.md section 1.3).
@pytest.mark.parametrize(
    "residual_units, baseline, branched",
    [
        (0, 4.83e6, 33.56e6),
        (1, 11.10e6, 76.72e6),
        (2, 17.37e6, 119.87e6),
        (3, 23.64e6, 163.02e6),
    ],
)
def test_parameter_counts_match_the_paper(residual_units, baseline, branched):
    count = trainable_count(models.baseline_resnet(residual_units))
    assert count == pytest.approx(baseline, rel=5e-3)
    count = trainable_count(models.abnet(residual_units))
    assert count == pytest.approx(branched, rel=5e-3)


def test_abnet_heads_and_names():
    model = models.abnet(0, num_classes=7, **SMALL)
    assert model.output.shape == (None, 8, 7)
    heads = model.get_layer("heads")
    assert heads.head_names == [
        f"head_{a}{b}{c}" for a in "01" for b in "01" for c in "01"
    ]
    stages = [x for x in model.layers if isinstance(x, BranchBlock)]
    assert [len(s.copies) for s in stages] == [2, 4, 8]


@pytest.mark.parametrize(
    "split_after, num_heads",
    [
        ((True, False, False), 2),
        ((False, True, False), 2),
        ((False, False, True), 2),
        ((True, True, False), 4),
        ((False, True, True), 4),
        ((False, False, False), 1),
    ],
)
def test_split_after_reproduces_the_ablations(split_after, num_heads):
    model = models.abnet(0, split_after=split_after, **SMALL)
    assert model.output.shape == (None, num_heads, 10)
    baseline = trainable_count(models.baseline_resnet(0, **SMALL))
    stages = [x for x in model.layers if isinstance(x, BranchBlock)]
    path = trainable_count(model) - sum(
        trainable_count(s) - trainable_count(s.copies[0]) for s in stages
    )
    assert path == baseline


def test_more_branches_and_levels_generalise_the_tree():
    model = models.abnet(0, num_branches=3, num_levels=2, **SMALL)
    assert model.output.shape == (None, 9, 10)
    assert model.get_layer("heads").head_names[-1] == "head_22"


def _transplant_head(model, baseline, head_index, num_branches=2):
    """Copies head `head_index`'s path of `model` into `baseline`."""
    stages = [x for x in model.layers if isinstance(x, BranchBlock)]
    splits = [x for x in model.layers if isinstance(x, AndhraSplit)]
    num_levels = len(stages)
    digits = [
        head_index // num_branches ** (num_levels - 1 - level) % num_branches
        for level in range(num_levels)
    ]
    branch_at = [
        sum(
            d * num_branches ** (level - i)
            for i, d in enumerate(digits[: level + 1])
        )
        for level in range(num_levels)
    ]
    copies = {}
    for stage, branch in zip(stages, branch_at):
        for layer in stage.copies[branch].layers:
            copies[layer.name] = layer
    for level, (split, branch) in enumerate(zip(splits, branch_at)):
        if split.prelus:
            copies[f"act{level + 1}"] = split.prelus[branch]
    for layer in baseline.layers:
        if not layer.weights:
            continue
        source = copies.get(layer.name) or model.get_layer(layer.name)
        layer.set_weights(source.get_weights())


@pytest.mark.parametrize("activation", ["relu", "prelu"])
@pytest.mark.parametrize("execution", ["loop", "stacked"])
def test_every_head_path_is_the_baseline(activation, execution, rng):
    model = models.abnet(1, activation=activation, **SMALL)
    set_execution(model, execution)
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    heads = to_numpy(model(x))
    for head in (0, 5, 7):
        baseline = models.baseline_resnet(1, activation=activation, **SMALL)
        _transplant_head(model, baseline, head)
        np.testing.assert_allclose(
            to_numpy(baseline(x)), heads[:, head], atol=1e-5
        )


def test_shared_final_activation_is_one_prelu_for_every_head(tmp_path, rng):
    from keras_andhra.evaluation import extract_head
    from keras_andhra.models import head_paths

    shared = models.abnet(
        0, activation="prelu", share_final_activation=True, **SMALL
    )
    separate = models.abnet(0, activation="prelu", **SMALL)
    final_channels = 8 * SMALL["width"]
    # One final PReLU instead of eight: seven sets of slopes fewer.
    assert separate.count_params() - shared.count_params() == (
        7 * final_channels
    )
    assert shared.head_names == separate.head_names
    baseline = models.baseline_resnet(0, activation="prelu", **SMALL)
    assert head_paths.head_cost(shared, 5)[0] == baseline.count_params()
    final = shared.get_layer("final_act")
    final.set_weights([rng.uniform(0, 1, w.shape) for w in final.weights])
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    heads = to_numpy(shared(x))
    np.testing.assert_allclose(
        to_numpy(extract_head(shared, "head_101")(x)), heads[:, 5], atol=1e-5
    )
    path = str(tmp_path / "shared.keras")
    shared.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(to_numpy(loaded(x)), heads, atol=1e-6)
    with pytest.raises(TypeError, match="`share_final_activation` must be"):
        models.abnet(share_final_activation="yes", **SMALL)


def test_stride_two_convolutions_pad_symmetrically():
    model = models.baseline_resnet(0, **SMALL)
    pad = model.get_layer("stage2_proj_a_pad")
    assert pad.padding == ((1, 1), (1, 1))
    conv = model.get_layer("stage2_proj_a_conv")
    assert conv.padding == "valid" and not conv.use_bias
    assert model.get_layer("stem_bn").epsilon == 1e-5


def test_fit_trains_all_heads(rng):
    model = models.abnet(0, num_classes=3, **SMALL)
    x = rng.normal(size=(32, 8, 8, 3)).astype("float32")
    y = np.repeat(rng.integers(0, 3, size=(32, 1)), 8, axis=1)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_save_and_load_predicts_identically(tmp_path, rng):
    model = models.abnet(1, activation="prelu", **SMALL)
    path = str(tmp_path / "abnet.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(loaded(x)))
    assert (
        loaded.get_layer("heads").head_names
        == model.get_layer("heads").head_names
    )


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(num_branches=0), ValueError, "`num_branches` must be at least"),
        (dict(num_branches=-1), ValueError, "`num_branches` must be at least"),
        (dict(num_branches=2.0), TypeError, "`num_branches` must be a pos"),
        (dict(split_after=(True, True)), ValueError, "`split_after` must be"),
        (dict(split_after="TTT"), ValueError, "`split_after` must be"),
        (dict(num_levels=4), ValueError, "`num_levels` must be an int"),
        (dict(input_shape=(32, 32)), ValueError, "`input_shape` must be"),
        (dict(input_shape=(None, 32, 3)), ValueError, "`input_shape` must"),
        (dict(activation="relux"), ValueError, "Unknown activation"),
        (dict(residual_units=-1), ValueError, "`residual_units` must be at"),
        (dict(width="64"), TypeError, "`width` must be an int"),
        (dict(num_classes=0), ValueError, "`num_classes` must be at least"),
    ],
)
def test_abnet_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        models.abnet(**kwargs)


def test_baseline_bad_input_shape():
    with pytest.raises(ValueError, match="`input_shape` must be"):
        models.baseline_resnet(input_shape=(8, 8, 3, 1))


def test_input_of_the_wrong_rank_at_call():
    model = models.abnet(0, **SMALL)
    with pytest.raises(ValueError):
        model(np.zeros((2, 8, 8), "float32"))


def test_abnet_variable_paths_are_unique():
    model = models.abnet(1, activation="prelu", **SMALL)
    paths = [v.path for v in model.weights]
    assert len(paths) == len(set(paths))


def test_training_steps_are_reproducible(rng):
    # Guards against run-to-run different gradients, such as PyTorch's
    # for strided 1x1 convolutions of channels-last inputs.
    model = models.baseline_resnet(0, num_classes=3, **SMALL)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = rng.normal(size=(16, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, size=(16,))
    start = [to_numpy(v) for v in model.variables]
    results = []
    for _ in range(3):
        for variable, value in zip(model.variables, start):
            variable.assign(value)
        model.train_on_batch(x, y)
        results.append([to_numpy(v) for v in model.trainable_variables])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, atol=1e-6)
