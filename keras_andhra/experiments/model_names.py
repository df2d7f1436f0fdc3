"""The paper's models by name: `baseline[-rR]` and `abnet-rR`."""

import re

from keras_andhra.models import abnet
from keras_andhra.models import baseline_resnet

#: Names `build_model` takes: the baselines BS-1G-R{0..3} and the
#: 8-head ABNet-2G-R{0..3}; `baseline` is `baseline-r0`.
MODEL_NAMES = tuple(
    ["baseline"]
    + [f"baseline-r{r}" for r in range(4)]
    + [f"abnet-r{r}" for r in range(4)]
)
_PATTERN = re.compile(r"^(baseline|abnet)(?:-r(\d+))?$")


def parse(name):
    """`(family, residual_units)` of a model name, checked."""
    match = _PATTERN.match(name) if isinstance(name, str) else None
    if match is None or (match.group(1) == "abnet" and not match.group(2)):
        raise ValueError(
            f"Unknown model {name!r}. Models: {', '.join(MODEL_NAMES)} "
            "(R, the residual units per stage, may be any int >= 0)."
        )
    return match.group(1), int(match.group(2) or 0)


def canonical(name):
    """The name with its R spelled out: `baseline` -> `baseline-r0`."""
    family, residual_units = parse(name)
    return f"{family}-r{residual_units}"


def baseline_of(name):
    """The baseline an ABNet is compared with (the same R)."""
    return f"baseline-r{parse(name)[1]}"


def build_model(
    name,
    num_classes,
    input_shape,
    width=64,
    activation="relu",
    num_branches=2,
    num_levels=3,
):
    """Builds `baseline`, `baseline-rR` or `abnet-rR` (8 heads by default).

    Args:
        name: A model name (see `MODEL_NAMES`).
        num_classes: Int, classes of the data.
        input_shape: `(height, width, channels)`.
        width: Int, the stem's channels (64 in the paper).
        activation: A Keras activation name or `"prelu"`.
        num_branches: Int, branches per split of an ABNet (2 in the paper).
        num_levels: Int from 0 to 3, split levels of an ABNet (3 in the
            paper). Baselines have neither.

    Returns:
        An `AndhraModel` for `abnet-rR`, a plain `keras.Model` for the
        baselines.

    Example:

    ```python
    import keras_andhra as ka

    model = ka.experiments.build_model("abnet-r0", 10, (28, 28, 1), width=8)
    model.num_heads  # 8
    ```
    """
    family, residual_units = parse(name)
    options = dict(
        num_classes=num_classes,
        width=width,
        input_shape=tuple(input_shape),
        activation=activation,
    )
    if family == "baseline":
        return baseline_resnet(residual_units, **options)
    return abnet(
        residual_units,
        num_branches=num_branches,
        num_levels=num_levels,
        **options,
    )
