"""Heads by name or index: the one resolver of every API that takes heads.

A head is named by its name (`"head_011"`, from `model.head_names`) or
its position (an int, NumPy's too; negative counts from the end).
"""

from keras_andhra.utils import arguments


def head_index(head, head_names, argument="head", wrong_type=TypeError):
    """The position of `head` among `head_names`.

    Args:
        head: A head name or an int index.
        head_names: The heads' names, in order.
        argument: The argument's name, for the messages (`"order"` adds
            "in `order`" after the head).
        wrong_type: The exception for a head that is neither.

    Raises:
        ValueError: for an unknown name or an index out of range.
    """
    names = list(head_names)
    where = "" if argument == "head" else f" in `{argument}`"
    if isinstance(head, str):
        if head not in names:
            raise ValueError(
                f"Unknown head {head!r}{where}. The heads are {names}. "
                f"Received: {argument}={head!r}"
            )
        return names.index(head)
    index = arguments.as_int(head)
    if index is None:
        raise wrong_type(
            f"Head {head!r} is not a head name or an int index: "
            f"`{argument}` must be a head name (from `model.head_names`) "
            f"or an int index. Received: {argument}={head!r}"
        )
    if not -len(names) <= index < len(names):
        raise ValueError(
            f"Head index {index}{where} is out of range for {len(names)} "
            f"heads. Received: {argument}={head!r}"
        )
    return index % len(names)


def head_indices(heads, head_names, argument="heads", wrong_type=ValueError):
    """Positions of a head or a list of heads; each may appear once.

    Raises:
        ValueError: as `head_index`, for an empty list, or for a head
            listed twice.
    """
    if isinstance(heads, str) or arguments.is_int(heads):
        heads = [heads]
    heads = list(heads)
    if not heads:
        raise ValueError(f"`{argument}` must name at least one head.")
    positions = []
    for head in heads:
        index = head_index(head, head_names, argument, wrong_type)
        if index in positions:
            raise ValueError(
                f"Head {head!r} is listed twice in `{argument}`. Received: "
                f"{argument}={heads}"
            )
        positions.append(index)
    return positions
