import functools
import itertools

import keras

from keras_andhra import layers
from keras_andhra.layers import branch_paths
from keras_andhra.models import resnet_blocks
from keras_andhra.models.andhra_model import AndhraModel
from keras_andhra.utils import arguments

_NUM_SPLIT_POINTS = resnet_blocks.NUM_STAGES - 1


def abnet(
    residual_units=0,
    num_classes=10,
    num_branches=2,
    num_levels=3,
    width=64,
    input_shape=(32, 32, 3),
    activation="relu",
    split_after=None,
    share_final_activation=False,
):
    """Builds the paper's ANDHRA Bandersnatch network ABNet-2G-R{R}.

    The baseline `baseline_resnet` with an ANDHRA split at the end of the
    stem, of stage 2 and of stage 3: each split hands every branch its own
    copy of the activated signal, and every stage after a split is a fresh
    copy per branch (`BranchBlock`). Branches never merge, so
    `num_branches ** num_levels` heads come out, stacked by a
    `HeadCollector` as `(batch, num_heads, num_classes)` logits. Every
    head's path is exactly the baseline network, parameter for parameter.

    At width 64 on CIFAR-10 the 8-head networks have 33.56M / 76.72M /
    119.87M / 163.02M parameters for `residual_units` 0 / 1 / 2 / 3
    (counted from the reference code's architecture; the paper does not
    print them).

    Head names and the reference code's outputs: the digits of a name are
    the branch taken at each split, 0-based, where the reference counts
    from 1: `head_000` is `out111`, `head_001` is `out112`, ...,
    `head_111` is `out222`, in the same order.

    Args:
        residual_units: Int >= 0, identity residual units after each
            stage's first block (the R of ABNet-2G-R{R}).
        num_classes: Int, the number of logits per head.
        num_branches: Int >= 1, branches per split (2 in the paper).
        num_levels: Int from 0 to 3: split after the first `num_levels`
            stages (stem, stage 2, stage 3). Ignored when `split_after`
            is given.
        width: Int, channels of the stem (64 in the paper).
        input_shape: `(height, width, channels)` of one image.
        activation: A Keras activation name or `"prelu"`. With `"prelu"`
            every split gives each branch its own per-channel PReLU.
        split_after: Optional 3 bools: whether to split after the stem,
            stage 2 and stage 3. `(True, False, False)` is the reference
            code's 2H1 ablation, `(False, True, False)` 2H2,
            `(False, False, True)` 2H3, `(True, True, False)` 4H and
            `(False, True, True)` 4H2. Where there is no split the
            baseline's activation stands.
        share_final_activation: Bool. The reference PReLU ABNet
            (`ab_2GR3_10_PRel.py`) applies one `PReLU(512)` module, the
            last activation before pooling, to every head, so its slopes
            are shared across branches. `True` does the same: one final
            activation layer for all heads (each head's path still has
            the baseline's parameters). Only PReLU has weights to share;
            with ReLU both choices compute the same.

    Returns:
        An `AndhraModel` whose output is `(batch, num_heads, num_classes)`
        logits, with `head_names` (`"head_000"` to `"head_111"` for the
        paper's tree) and `num_heads`.

    Example:

    ```python
    import keras_andhra as ka

    model = ka.models.abnet(residual_units=0, width=16)
    model.head_names[:2]  # ['head_000', 'head_001']
    ```

    Reference:
        Daliparthi, "ANDHRA Bandersnatch: Training Neural Networks to
        Predict Parallel Realities", arXiv:2411.19213 (2024).
    """
    input_shape = resnet_blocks.validate(
        residual_units, num_classes, width, input_shape, activation
    )
    split_after = _resolve_splits(num_levels, split_after)
    if not arguments.is_int(num_branches):
        raise TypeError(
            "`num_branches` must be a positive int. Received: "
            f"num_branches={num_branches!r}"
        )
    if num_branches < 1:
        raise ValueError(
            "`num_branches` must be at least 1. Received: "
            f"num_branches={num_branches}"
        )

    arguments.check_bool(
        "share_final_activation", share_final_activation, TypeError
    )
    inputs = keras.Input(input_shape, name="images")
    trunk = resnet_blocks.stem(inputs, width, residual_units, activation)
    stage = functools.partial(
        _stage,
        width=width,
        residual_units=residual_units,
        activation=activation,
        final_activation=activation,
    )
    branches = _branching_stages(
        [trunk],
        split_after,
        num_branches,
        activation,
        stage,
        # The last stage ends with the classifier (and its final
        # activation), unless every head shares that activation.
        num_classes=None if share_final_activation else num_classes,
    )
    if share_final_activation:
        branches = _shared_activation_heads(branches, activation, num_classes)
    outputs = layers.HeadCollector(name="heads")(branches)
    name = f"abnet_{num_branches}g_r{residual_units}"
    if share_final_activation:
        name += "_shared_act"
    if split_after != (True,) * _NUM_SPLIT_POINTS:
        name += "_" + "".join("1" if s else "0" for s in split_after)
    return AndhraModel(inputs, outputs, name=name)


def _branching_stages(
    branches, split_after, num_branches, activation, stage, num_classes
):
    """Stages 2-4, each after an ANDHRA split (or a plain activation)."""
    for level, split in enumerate(split_after):
        index = level + 2
        branches = layers.AndhraSplit(
            num_branches if split else 1,
            activation=activation,
            name=f"split{level + 1}" if split else f"act{level + 1}",
        )(branches)
        last = index == resnet_blocks.NUM_STAGES
        builder = _stage_builder(
            tuple(branches[0].shape[1:]),
            functools.partial(
                stage, index=index, num_classes=num_classes if last else None
            ),
            f"stage{index}",
        )
        branches = layers.BranchBlock(builder, name=f"stage{index}")(branches)
    return branches


def _shared_activation_heads(branches, activation, num_classes):
    """One final activation shared by every branch, then the classifiers
    as a block of their own."""
    final = resnet_blocks.activation_layer(activation, "final_act")
    paths = branch_paths.input_paths(branches)
    branches = [final(branch) for branch in branches]
    # A plain layer does not carry the branch paths the heads are named
    # by; they pass through it unchanged.
    branch_paths.set_paths(branches, paths)
    builder = _stage_builder(
        tuple(branches[0].shape[1:]),
        functools.partial(
            resnet_blocks.classifier, num_classes=num_classes, activation=None
        ),
        "classifier",
    )
    return layers.BranchBlock(builder, name="classifier")(branches)


def _resolve_splits(num_levels, split_after):
    if split_after is None:
        if (
            not arguments.is_int(num_levels)
            or not 0 <= num_levels <= _NUM_SPLIT_POINTS
        ):
            raise ValueError(
                f"`num_levels` must be an int from 0 to {_NUM_SPLIT_POINTS}"
                " (the network has that many stage boundaries to split at)."
                f" Received: num_levels={num_levels!r}"
            )
        return tuple(level < num_levels for level in range(_NUM_SPLIT_POINTS))
    if (
        isinstance(split_after, str)
        or not isinstance(split_after, (list, tuple))
        or len(split_after) != _NUM_SPLIT_POINTS
    ):
        raise ValueError(
            f"`split_after` must be {_NUM_SPLIT_POINTS} bools, one per stage "
            "boundary (after the stem, stage 2, stage 3), e.g. "
            f"(True, True, False). Received: split_after={split_after!r}"
        )
    return tuple(bool(s) for s in split_after)


def _stage(
    x,
    index,
    width,
    residual_units,
    activation,
    num_classes,
    final_activation,
):
    x = resnet_blocks.stage(x, index, width, residual_units, activation)
    if num_classes is None:
        return x
    return resnet_blocks.classifier(x, num_classes, final_activation)


def _stage_builder(input_shape, body, name):
    """A function that builds one fresh copy of `body` per call."""
    counter = itertools.count()

    def build():
        inputs = keras.Input(input_shape)
        return keras.Model(
            inputs, body(inputs), name=f"{name}_copy{next(counter)}"
        )

    return build
