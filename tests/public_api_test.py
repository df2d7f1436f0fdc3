import pathlib
import re

import pytest

import keras_andhra

DOCUMENTED = {
    "layers": [
        "AndhraSplit",
        "BranchBlock",
        "HeadCollector",
        "SizeGatedDense",
        "SizeGatedConv2D",
    ],
    "models": [
        "AndhraModel",
        "HeadStep",
        "StepOutputs",
        "abnet",
        "baseline_resnet",
        "widen_layer",
        "prune_to_active",
    ],
    "data": [
        "load_dataset",
        "ImageData",
        "Augmentation",
        "load_mnist_5000",
        "load_digits",
        "load_cifar",
    ],
    "experiments": [
        "Recipe",
        "EpochCosineDecay",
        "build_model",
        "reproduce",
        "Reproduction",
    ],
    "gradients": [
        "GradientAggregator",
        "StepContext",
        "Mean",
        "Sum",
        "OSGD",
        "PCGrad",
    ],
    "evaluation": [
        "rank_heads",
        "HeadReport",
        "ensemble_predict",
        "compare_runs",
        "RunComparison",
        "extract_head",
    ],
    "callbacks": [
        "BestHeadCheckpoint",
        "OrthogonalGradients",
        "DynamicGrowth",
    ],
}
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api"


@pytest.mark.parametrize(
    "group, name",
    [(group, name) for group, names in DOCUMENTED.items() for name in names],
)
def test_every_public_name_imports_and_is_documented(group, name):
    obj = getattr(getattr(keras_andhra, group), name)
    assert obj.__doc__ and "Example" in obj.__doc__
    page = (DOCS / f"{group}.md").read_text()
    assert f"::: keras_andhra.{group}.{name}" in page


def test_load_digits_shapes_and_split():
    (x_train, y_train), (x_test, y_test) = keras_andhra.data.load_digits()
    assert x_train.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert (
        x_train.dtype == "float32"
        and 0.0 <= x_train.min() <= x_train.max() <= 1.0
    )
    assert sorted(set(y_test.tolist())) == list(range(10))


def test_load_digits_bad_fraction():
    with pytest.raises(ValueError, match="`test_fraction` must be between"):
        keras_andhra.data.load_digits(test_fraction=1.5)


@pytest.mark.parametrize(
    "group, name",
    [(group, name) for group, names in DOCUMENTED.items() for name in names],
)
def test_docstring_examples_run(group, name):
    doc = getattr(getattr(keras_andhra, group), name).__doc__
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert blocks
    for block in blocks:
        source = "\n".join(line[4:] for line in block.splitlines())
        exec(compile(source, f"{name} example", "exec"), {})
