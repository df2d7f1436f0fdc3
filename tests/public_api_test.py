import pathlib

import pytest

import keras_andhra

DOCUMENTED = {
    "layers": ["AndhraSplit", "BranchBlock", "HeadCollector"],
    "models": ["abnet", "baseline_resnet"],
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
