"""The checks of user arguments, in one place.

Python's `bool` is an `int`, so "an int" and "a number" here exclude
`True` and `False` (which are almost always a mistake for a count or a
rate); NumPy's integers and floats count.
"""

import numbers
import os
import warnings
import zipfile

import keras
import numpy as np

# The signature HDF5 writes at the start of a file (or of its superblock,
# after a user block of 512, 1024, 2048, ... bytes).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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


def check_data(name, data, purpose, finite=False):
    """Refuses data that Keras would take silently or refuse unclearly.

    Checks arrays and tensors (alone, or in lists and dicts) and datasets
    whose size is known without reading them (a `tf.data.Dataset`'s
    cardinality, a `PyDataset`'s `num_batches`, `len`). Data of unknown
    size is left to Keras.

    Args:
        name: The argument's name, for the message (`"x"`).
        data: What was passed.
        purpose: What needs it, for the message (`"fit"`).
        finite: Whether NumPy float arrays must hold no NaN or infinity.

    Raises:
        ValueError: for data without examples, or with NaN or infinity.
        TypeError: for NumPy arrays that do not hold numbers.
    """
    size = _dataset_size(data)
    if size == 0:
        raise ValueError(
            f"`{name}` holds no batches: `{purpose}` needs one example or "
            "more. Check how the data was loaded, filtered or split. "
            f"Received: {name}, a {type(data).__name__} of 0 batches"
        )
    if size is not None:
        return
    for array in keras.tree.flatten(data):
        shape = getattr(array, "shape", None)
        if shape is not None and len(shape) and shape[0] == 0:
            raise ValueError(
                f"`{name}` holds no examples: `{purpose}` needs one example "
                "or more. Check how the data was loaded, filtered or "
                f"split. Received: {name} of shape {tuple(shape)}"
            )
        if not isinstance(array, np.ndarray):
            continue
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"`{name}` must hold numbers (ints or floats); convert text "
                "or objects first (class names to indices 0, 1, ...). "
                f"Received: {name} of dtype {array.dtype}"
            )
        if finite and array.dtype.kind == "f" and not _all_finite(array):
            bad = int(np.size(array) - np.isfinite(array).sum())
            raise ValueError(
                f"`{name}` holds NaN or infinite values, which make every "
                "loss NaN: clean them before training (drop those "
                "examples, or fill them with `np.nan_to_num`). Received: "
                f"{bad} of the {array.size} values of {name} not finite"
            )


def check_input_shape(name, x, input_shape):
    """Raises `ValueError` unless the examples of array `x` fit a model
    input of shape `input_shape` (without the batch axis)."""
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) == 0:
        return
    example, expected = tuple(shape[1:]), tuple(input_shape)
    if len(example) == len(expected) and all(
        e is None or e == s for s, e in zip(example, expected)
    ):
        return
    if example + (1,) == expected:
        fix = f"add the channel axis (`{name}[..., None]`)"
    else:
        fix = "reshape the data, or build the model for this shape"
    raise ValueError(
        f"`{name}` does not fit the model's input: its examples have shape "
        f"{example}, the input takes {expected}; {fix}. Received: {name} "
        f"of shape {tuple(shape)}"
    )


def check_same_length(names, x, y):
    """Raises `ValueError` unless arrays `x` and `y` have as many rows."""
    shapes = [getattr(a, "shape", None) for a in (x, y)]
    if None in shapes or not all(shapes) or shapes[0][0] == shapes[1][0]:
        return
    raise ValueError(
        f"`{names[0]}` and `{names[1]}` must hold the same examples, one "
        f"label per example: `{names[0]}` has {shapes[0][0]}, "
        f"`{names[1]}` {shapes[1][0]}. Received: {names[0]} of shape "
        f"{tuple(shapes[0])}, {names[1]} of shape {tuple(shapes[1])}"
    )


def _dataset_size(data):
    """A dataset's number of batches when known cheaply, else `None`."""
    if isinstance(data, keras.utils.PyDataset):
        return data.num_batches
    if hasattr(data, "shape") or isinstance(data, (list, tuple, dict)):
        return None
    if hasattr(data, "cardinality"):
        # A tf.data.Dataset: -1 is infinite, -2 unknown.
        size = int(data.cardinality())
        return size if size >= 0 else None
    try:
        return len(data)
    except TypeError:
        return None


def _all_finite(array):
    # A float64 sum is finite exactly when every value is, short of values
    # near float64's own range: one pass, no mask the size of the array.
    return np.isfinite(array.sum(dtype="float64")) or np.isfinite(array).all()


def check_model_file(name, path):
    """Raises `ValueError` unless `path` can be a saved Keras model.

    Says what Keras's `load_model` does not: that a `.keras` file that
    exists is not a zip archive (Keras says "File not found"), or not a
    Keras one, and that a `.h5` file is not HDF5 (h5py says "file
    signature not found").
    """
    path = os.fspath(path)
    received = f"Received: {name}={path!r}"
    if not os.path.exists(path):
        raise ValueError(
            f"No file {path!r}: `{name}` must be a model saved with "
            f"`model.save('model.keras')`. {received}"
        )
    if path.endswith(".keras"):
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f"{path!r} is not a `.keras` model file: a `.keras` file is "
                "a zip archive and this one is not (it may be truncated, "
                "or another format renamed). Save the model again with "
                f"`model.save('model.keras')`. {received}"
            )
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if "config.json" not in names:
            raise ValueError(
                f"{path!r} is a zip archive but not a Keras model: it has no "
                "config.json. Save the model with `model.save(...)`. "
                f"{received}"
            )
    if path.endswith(".h5") and not _is_hdf5(path):
        raise ValueError(
            f"{path!r} is not an HDF5 file, as a legacy `.h5` model is (it "
            "may be truncated, or another format renamed). Save the model "
            f"again, preferably as `.keras`. {received}"
        )


def _is_hdf5(path):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        offset = 0
        while offset + len(_HDF5_SIGNATURE) <= size:
            f.seek(offset)
            if f.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False
