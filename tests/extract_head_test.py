import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import set_execution
from conftest import to_numpy

import keras_andhra as ka
from keras_andhra.models import head_paths

SHAPE = (8, 8, 1)
L = keras.layers


def images(n=4, seed=0):
    return np.random.default_rng(seed).random((n,) + SHAPE).astype("float32")


@pytest.mark.parametrize(
    "residual_units, activation, execution",
    [(0, "relu", "loop"), (0, "relu", "stacked"), (1, "prelu", "stacked")],
)
def test_every_extracted_head_is_that_head_with_the_baseline_size(
    residual_units, activation, execution
):
    model = ka.models.abnet(
        residual_units,
        width=4,
        num_levels=2,
        input_shape=SHAPE,
        activation=activation,
    )
    set_execution(model, execution)
    baseline = ka.models.baseline_resnet(
        residual_units, width=4, input_shape=SHAPE, activation=activation
    )
    x = images()
    heads = to_numpy(model(x))
    for index, name in enumerate(model.head_names):
        extracted = ka.evaluation.extract_head(model, name)
        np.testing.assert_allclose(
            to_numpy(extracted(x)), heads[:, index], atol=1e-5
        )
        assert extracted.count_params() == baseline.count_params()
        assert all(
            type(layer).__module__.startswith("keras.")
            for layer in extracted.layers
        )
    assert extracted.name == f"{model.name}_{name}"


def test_extract_head_by_index_and_bad_heads():
    model = ka.models.abnet(0, width=2, num_levels=1, input_shape=SHAPE)
    x = images()
    last = ka.evaluation.extract_head(model, -1, name="last")
    assert last.name == "last"
    np.testing.assert_allclose(
        to_numpy(last(x)), to_numpy(model(x))[:, 1], atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(ka.evaluation.extract_head(model, np.int64(1))(x)),
        to_numpy(last(x)),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="Unknown head 'head_7'"):
        ka.evaluation.extract_head(model, "head_7")
    with pytest.raises(ValueError, match="Head index 2 is out of range"):
        ka.evaluation.extract_head(model, 2)
    with pytest.raises(TypeError, match="`head` must be a head name"):
        ka.evaluation.extract_head(model, True)
    with pytest.raises(ValueError, match="This needs an ANDHRA model"):
        ka.evaluation.extract_head(
            ka.models.baseline_resnet(0, width=2, input_shape=SHAPE), 0
        )


def test_extracted_head_owns_its_weights_and_round_trips(tmp_path):
    model = ka.models.abnet(0, width=2, num_levels=1, input_shape=SHAPE)
    x = images()
    before = to_numpy(model(x))
    extracted = ka.evaluation.extract_head(model, "head_0")
    expected = to_numpy(extracted(x))
    path = tmp_path / "head.keras"
    extracted.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(to_numpy(loaded(x)), expected, atol=1e-6)
    extracted.set_weights([np.zeros_like(w) for w in extracted.get_weights()])
    np.testing.assert_array_equal(to_numpy(model(x)), before)


def test_extracted_head_loads_without_keras_andhra(tmp_path):
    model = ka.models.abnet(
        0, width=2, num_levels=1, input_shape=SHAPE, activation="prelu"
    )
    x = images()
    ka.evaluation.extract_head(model, "head_1").save(tmp_path / "head.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", to_numpy(model(x))[:, 1])
    script = (
        "import sys; sys.modules['keras_andhra'] = None\n"
        "import keras, numpy as np\n"
        f"d = {str(tmp_path)!r}\n"
        "m = keras.saving.load_model(d + '/head.keras', safe_mode=True)\n"
        "got = keras.ops.convert_to_numpy(m(np.load(d + '/x.npy')))\n"
        "print(np.abs(got - np.load(d + '/expected.npy')).max())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ, KERAS_BACKEND=keras.backend.backend()),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert float(run.stdout.strip().splitlines()[-1]) <= 1e-6


def per_branch_network():
    """A custom tree with standard layers on single branches."""
    inputs = keras.Input((6,))
    trunk = L.Dense(6, name="trunk")(inputs)
    branches = ka.layers.AndhraSplit(2, activation="tanh")(trunk)
    branches = [L.Dense(5, name=f"own{i}")(b) for i, b in enumerate(branches)]
    branches = ka.layers.BranchBlock(
        keras.Sequential([L.Dense(4, activation="relu"), L.Dense(3)])
    )(branches)
    outputs = ka.layers.HeadCollector()(branches)
    return ka.models.AndhraModel(inputs, outputs)


def test_custom_tree_heads_and_their_cost():
    model = per_branch_network()
    x = np.random.default_rng(1).random((5, 6)).astype("float32")
    heads = to_numpy(model(x))
    for index in range(2):
        extracted = ka.evaluation.extract_head(model, index)
        np.testing.assert_allclose(
            to_numpy(extracted(x)), heads[:, index], atol=1e-6
        )
        names = [layer.name for layer in extracted.layers]
        assert f"own{index}" in names and f"own{1 - index}" not in names
        parameters, flops = head_paths.head_cost(model, index)
        assert parameters == extracted.count_params()
        assert flops == 2 * (6 * 6 + 6 * 5 + 5 * 4 + 4 * 3)


def test_head_cost_equals_the_baseline_cost():
    model = ka.models.abnet(1, width=4, num_levels=2, input_shape=SHAPE)
    baseline = ka.models.baseline_resnet(1, width=4, input_shape=SHAPE)
    expected = 0
    for layer in baseline.layers:
        if isinstance(layer, L.Conv2D):
            spatial = np.prod(layer.output.shape[1:3])
            expected += 2 * np.prod(layer.kernel.shape) * spatial
        elif isinstance(layer, L.Dense):
            expected += 2 * np.prod(layer.kernel.shape)
    cost = (baseline.count_params(), int(expected))
    assert head_paths.model_cost(baseline) == cost
    for index in range(model.num_heads):
        assert head_paths.head_cost(model, index) == cost
