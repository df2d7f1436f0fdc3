"""Branch paths: which split each tensor of a branched network came from.

A branch path is a tuple of branch indices, one per split taken from the
network input: `()` for the trunk, `(1, 0)` for the first branch of the
second branch. `AndhraSplit` and `BranchBlock` record the path of the
symbolic tensors they return (in `compute_output_spec`, while a
functional model is being built), and `HeadCollector` turns the paths of
its inputs into head names. The paths live here, in a table keyed weakly
by tensor, not on the tensors.
"""

import weakref

import keras

_PATHS = weakref.WeakKeyDictionary()


def as_branch_list(inputs):
    """Returns `(list_of_tensors, was_a_list)`."""
    if isinstance(inputs, (list, tuple)):
        return list(inputs), True
    return [inputs], False


def input_paths(inputs):
    """Returns the branch path of every tensor in `inputs`.

    A symbolic tensor that no keras_andhra layer produced is the trunk
    `()` when it stands alone, or branch `(i,)` of a plain list.
    """
    tensors, _ = as_branch_list(inputs)
    paths = []
    for i, tensor in enumerate(tensors):
        path = _PATHS.get(tensor) if _is_symbolic(tensor) else None
        if path is None:
            path = (i,) if len(tensors) > 1 else ()
        paths.append(tuple(path))
    return paths


def set_paths(tensors, paths):
    """Records `paths` on symbolic `tensors` (eager tensors are left be)."""
    for tensor, path in zip(tensors, paths):
        if _is_symbolic(tensor):
            _PATHS[tensor] = tuple(path)


def _is_symbolic(tensor):
    return isinstance(tensor, keras.KerasTensor)


def head_names(paths):
    """Returns the stable head names for a list of branch paths.

    `()` gives `"head"`; `(0, 1, 1)` gives `"head_011"`. When any branch
    index in the tree has two digits or more, every name joins its indices
    with underscores (`"head_0_12"`) so that no two paths share a name.
    """
    wide = any(index >= 10 for path in paths for index in path)
    separator = "_" if wide else ""
    return [
        "head_" + separator.join(str(i) for i in path) if path else "head"
        for path in paths
    ]


def branch_shapes(input_shape):
    """Normalises one shape, or a list of branch shapes, to a list."""
    if isinstance(input_shape, (list, tuple)) and any(
        isinstance(dim, (list, tuple)) for dim in input_shape
    ):
        return [tuple(shape) for shape in input_shape]
    return [tuple(input_shape)]
