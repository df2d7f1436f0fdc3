"""Fence: what a rebuilt optimizer inherits beyond its config (growth).

Growth replaces the optimizer with one built for the new variables. Its
config carries the hyper-parameters, but not the variables excluded from
weight decay (Keras keeps them by private key, with the name pattern) nor
the moving averages of `use_ema`. This module is the one place that reads
and writes them (`_var_key`, `_exclude_from_weight_decay`,
`_exclude_from_weight_decay_pattern`, `_trainable_variables`,
`_model_variables_moving_average`). tests/compat_test.py fails loudly,
naming this module, if Keras changes them.
"""


def weight_decay_exclusions(optimizer):
    """`(paths, pattern)`: what `exclude_from_weight_decay` set, by path."""
    keys = getattr(optimizer, "_exclude_from_weight_decay", None) or set()
    variables = getattr(optimizer, "_trainable_variables", [])
    paths = {v.path for v in variables if optimizer._var_key(v) in keys}
    return paths, getattr(optimizer, "_exclude_from_weight_decay_pattern", None)


def exclude_weight_decay(optimizer, variables, paths, pattern):
    """Applies `weight_decay_exclusions` to a new, unbuilt optimizer."""
    if not paths and pattern is None:
        return
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in variables if v.path in paths]
    )
    optimizer._exclude_from_weight_decay_pattern = pattern


def moving_averages(optimizer, variables):
    """`{id(average): variable}` of a built optimizer with `use_ema`."""
    if not getattr(optimizer, "use_ema", False):
        return {}
    averages = optimizer._model_variables_moving_average
    return {id(a): v for a, v in zip(averages, variables)}
