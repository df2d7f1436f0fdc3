"""The checks of user arguments, in one place.

Python's `bool` is an `int`, so "an int" and "a number" here exclude
`True` and `False` (which are almost always a mistake for a count or a
rate); NumPy's integers and floats count.
"""

import numbers
import warnings


def is_int(value):
    """Whether `value` is an integer (NumPy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    """Whether `value` is a real number (NumPy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def as_int(value):
    """`value` as a Python `int` if it is an integer, else `None`."""
    return int(value) if is_int(value) else None


def check_positive_int(name, value, error=ValueError):
    """Raises `error` unless `value` is an int >= 1; returns it as `int`."""
    if not is_int(value) or value < 1:
        raise error(
            f"`{name}` must be a positive int. Received: {name}={value!r}"
        )
    return int(value)


def check_non_negative(name, value):
    """Raises `ValueError` unless `value` is a number >= 0."""
    if not is_number(value) or value < 0:
        raise ValueError(
            f"`{name}` must be a number >= 0. Received: {name}={value!r}"
        )
    return value


def check_bool(name, value, error=ValueError):
    """Raises `error` unless `value` is `True` or `False`."""
    if not isinstance(value, bool):
        raise error(
            f"`{name}` must be True or False. Received: {name}={value!r}"
        )
    return value


def check_one_of(name, value, choices):
    """Raises `ValueError` unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {tuple(choices)}. Received: "
            f"{name}={value!r}"
        )
    return value


def renamed(new_name, new_value, old_name, old_value, default):
    """Resolves a keyword argument renamed from `old_name` to `new_name`.

    The old keyword keeps working, with a `DeprecationWarning`, unless both
    are given with different values (a `TypeError`). Returns the value to
    use.
    """
    if old_value is None:
        return new_value
    warnings.warn(
        f"`{old_name}` is deprecated and will be removed; use "
        f"`{new_name}={old_value!r}` instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    if new_value != default and new_value != old_value:
        raise TypeError(
            f"`{old_name}` is the deprecated name of `{new_name}`: give one. "
            f"Received: {new_name}={new_value!r}, {old_name}={old_value!r}"
        )
    return old_value
