import keras
from keras import ops

from keras_andhra.layers import branch_paths


@keras.saving.register_keras_serializable(package="keras_andhra")
class HeadCollector(keras.layers.Layer):
    """Gathers the leaves of a branch tree into one stacked head tensor.

    The last layer of an ANDHRA network: it takes the outputs of every
    branch (the leaves) and stacks them along a new axis 1, giving one
    tensor of shape `(batch, num_heads, ...)`. Branches never merge; the
    collector only stacks them so that losses, metrics and ensembles can
    treat the heads as one array.

    Head names encode the branch path of each leaf, one digit per split
    level: `"head_011"` is branch 0 at the first split, then 1, then 1 (the
    reference code's `out122`). Indices of 10 or more are joined with
    underscores (`"head_3_12"`). A tensor that went through no split is
    `"head"`. The names are recorded when the layer is first called on
    symbolic tensors and stored in its config, so they survive save/load.

    Args:
        head_names: Optional list of unique names, one per leaf. By default
            they are derived from the branch paths.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A list of leaf tensors of one shape (or a single tensor).

    Returns:
        A tensor of shape `(batch, num_heads, ...)`.

    Example:

    ```python
    import keras
    import keras_andhra as ka

    inputs = keras.Input((4,))
    leaves = ka.layers.AndhraSplit(2)(ka.layers.AndhraSplit(2)(inputs))
    collector = ka.layers.HeadCollector()
    heads = collector(leaves)  # (batch, 4, 4)
    collector.head_names  # ['head_00', 'head_01', 'head_10', 'head_11']
    ```
    """

    def __init__(self, head_names=None, **kwargs):
        super().__init__(**kwargs)
        if head_names is not None:
            head_names = tuple(_validate_names(head_names))
        self._head_names = head_names

    @property
    def head_names(self):
        """The head names, in head order (`None` before the first call)."""
        return None if self._head_names is None else list(self._head_names)

    @property
    def num_heads(self):
        """The number of heads, or `None` before the first call."""
        return None if self._head_names is None else len(self._head_names)

    def build(self, input_shape):
        shapes = branch_paths.branch_shapes(input_shape)
        if len(set(shapes)) > 1:
            raise ValueError(
                "All heads collected by `HeadCollector` must have the same "
                "shape; give every branch the same output layer. Received: "
                f"input_shape={input_shape}"
            )
        if len(shapes[0]) < 1:
            raise ValueError(
                "`HeadCollector` needs batched inputs of rank 1 or more. "
                f"Received: input_shape={input_shape}"
            )
        if self.head_names is not None and len(self.head_names) != len(shapes):
            raise ValueError(
                f"`head_names` has {len(self.head_names)} names but "
                f"{len(shapes)} heads were given; pass one name per head. "
                f"Received: head_names={self.head_names}"
            )

    def call(self, inputs):
        tensors, _ = branch_paths.as_branch_list(inputs)
        return ops.stack(tensors, axis=1)

    def compute_output_spec(self, inputs, *args, **kwargs):
        if self._head_names is None:
            names = branch_paths.head_names(branch_paths.input_paths(inputs))
            if len(set(names)) != len(names):
                names = [f"head_{i}" for i in range(len(names))]
            self._head_names = tuple(names)
        return super().compute_output_spec(inputs, *args, **kwargs)

    def compute_output_shape(self, input_shape):
        shapes = branch_paths.branch_shapes(input_shape)
        shape = shapes[0]
        return (shape[0], len(shapes)) + tuple(shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update({"head_names": self.head_names})
        return config


def _validate_names(head_names):
    if isinstance(head_names, str) or not all(
        isinstance(name, str) for name in head_names
    ):
        raise TypeError(
            "`head_names` must be a list of strings, one per head. "
            f"Received: head_names={head_names!r}"
        )
    head_names = list(head_names)
    if len(set(head_names)) != len(head_names):
        raise ValueError(
            "`head_names` must be unique, so that every head has its own "
            f"metrics. Received: head_names={head_names}"
        )
    return head_names
