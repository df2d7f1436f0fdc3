"""How a `BranchBlock` runs its branches by default, chosen by measurement.

The layers that execute branches own the choice: `BranchBlock` resolves
its `"auto"` execution here, per backend and device kind.
"""

import keras

from keras_andhra import backend

# Default execution of `BranchBlock`, per backend and device kind, chosen
# by measurement (`benchmarks/branch_speed.py`, table in
# `benchmarks/README.md`). "stacked" runs the branches of a level as one
# grouped/batched kernel per layer; "loop" runs one copy per branch. A
# number is a channel threshold: stacked while the widest layer of one
# copy has at most that many channels (small kernels are dominated by
# per-op overhead, which stacking removes; wide ones by the grouped
# kernel itself, which is slower than separate ones on these CPUs).
# A pair missing from the table was not measured and gets the loop.
BRANCH_EXECUTION = {
    ("tensorflow", "cpu"): "loop",
    ("jax", "cpu"): "loop",
    ("torch", "cpu"): 64,
}


def default_branch_execution(max_channels=None):
    """Returns the measured-faster `BranchBlock` execution here.

    Args:
        max_channels: The widest layer of one branch's copy (filters or
            units), for rules that depend on it. `None` if unknown.

    Returns:
        `"loop"` or `"stacked"`.
    """
    rule = BRANCH_EXECUTION.get(
        (keras.config.backend(), backend.device_kind()), "loop"
    )
    if isinstance(rule, int):
        if max_channels is None or max_channels > rule:
            return "loop"
        return "stacked"
    return rule
