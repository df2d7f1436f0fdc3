import keras
from keras import ops

from keras_andhra.layers import branch_paths
from keras_andhra.utils import arguments


@keras.saving.register_keras_serializable(package="keras_andhra")
class AndhraSplit(keras.layers.Layer):
    """The ANDHRA split: one activation per branch, one copy per branch.

    An ANDHRA split applies its activation once for every branch and hands
    each branch its own copy of the activated signal. The copies are
    identical for a fixed activation such as ReLU; the branches differ only
    because the layers after the split are independent copies with their
    own weights (see `BranchBlock`). With `activation="prelu"` every branch
    gets its own per-channel PReLU (slopes initialised to 0.25), as in the
    reference code's PReLU networks, so the copies can drift apart during
    training.

    Splits nest: called on a list of `M` branches, the layer splits each of
    them and returns `M * num_branches` tensors, parent-major (all children
    of branch 0 first). The branch path of every output is recorded, so a
    `HeadCollector` at the end of the tree can name the heads.

    Args:
        num_branches: Positive int, the number of branches each incoming
            tensor is split into. `1` applies the activation without
            splitting (the baseline's activation in the same place).
        activation: Activation applied once per branch: a Keras activation
            name, a callable, `"prelu"` (one per-channel `PReLU` per branch)
            or `None` (plain copies).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A tensor, or a list of branch tensors.

    Returns:
        A list of `len(inputs) * num_branches` tensors.

    Example:

    ```python
    import keras
    import keras_andhra as ka

    inputs = keras.Input((8, 8, 16))
    branches = ka.layers.AndhraSplit(num_branches=2)(inputs)
    len(branches)  # 2
    branches = ka.layers.AndhraSplit(num_branches=2)(branches)
    len(branches)  # 4
    ```

    Reference:
        Daliparthi, "ANDHRA Bandersnatch: Training Neural Networks to
        Predict Parallel Realities", arXiv:2411.19213 (2024).
    """

    def __init__(self, num_branches=2, activation="relu", **kwargs):
        super().__init__(**kwargs)
        if not arguments.is_int(num_branches):
            raise TypeError(
                "`num_branches` must be a positive int, the number of "
                "branches per incoming tensor. Received: "
                f"num_branches={num_branches!r}"
            )
        if num_branches < 1:
            raise ValueError(
                "`num_branches` must be at least 1; use 1 to apply the "
                "activation without splitting. Received: "
                f"num_branches={num_branches}"
            )
        self.num_branches = num_branches
        self.activation = _validate_activation(activation)
        self._activation_fn = (
            None
            if self.activation in ("prelu", None)
            else keras.activations.get(activation)
        )
        self.prelus = []
        self._fan_out = None

    def build(self, input_shape):
        shapes = branch_paths.branch_shapes(input_shape)
        if self.activation == "prelu":
            for shape in shapes:
                if len(shape) < 2:
                    raise ValueError(
                        "`AndhraSplit(activation='prelu')` needs inputs of "
                        "rank 2 or more (batch, ..., channels) for its "
                        f"per-channel slopes. Received: input_shape={shape}"
                    )
                shared_axes = list(range(1, len(shape) - 1)) or None
                for _ in range(self.num_branches):
                    prelu = keras.layers.PReLU(
                        alpha_initializer=keras.initializers.Constant(0.25),
                        shared_axes=shared_axes,
                        dtype=self.dtype_policy,
                    )
                    prelu.build(shape)
                    self.prelus.append(prelu)

    def set_fan_out(self, fan_out):
        """Sets how the signal is handed to the branches (or `None`).

        By default every branch gets the incoming tensor itself, and the
        backward pass sums the branches' gradients. A training step that
        works on the gradients arriving at the split (representation-level
        gradient surgery) sets `fan_out(x, i)`, which returns the
        `num_branches` copies of incoming tensor `i` with its own backward
        pass, while it traces, and `None` after.

        Args:
            fan_out: A function `(x, i) -> list of num_branches tensors`,
                or `None` for the plain copies.
        """
        if fan_out is not None and not callable(fan_out):
            raise TypeError(
                "`fan_out` must be a function `(x, i) -> copies` or None. "
                f"Received: fan_out={fan_out!r}"
            )
        self._fan_out = fan_out

    def call(self, inputs):
        tensors, _ = branch_paths.as_branch_list(inputs)
        outputs = []
        for i, x in enumerate(tensors):
            copies = [x] * self.num_branches
            if self._fan_out is not None and self.num_branches > 1:
                copies = self._fan_out(x, i)
            for j, copy in enumerate(copies):
                if self.activation == "prelu":
                    prelu = self.prelus[i * self.num_branches + j]
                    outputs.append(prelu(copy))
                elif self._activation_fn is None:
                    outputs.append(ops.copy(copy))
                else:
                    outputs.append(self._activation_fn(copy))
        return outputs

    def compute_output_spec(self, inputs, *args, **kwargs):
        outputs = super().compute_output_spec(inputs, *args, **kwargs)
        paths = branch_paths.input_paths(inputs)
        if self.num_branches > 1:
            paths = [
                paths[k // self.num_branches] + (k % self.num_branches,)
                for k in range(len(outputs))
            ]
        branch_paths.set_paths(outputs, paths)
        return outputs

    def compute_output_shape(self, input_shape):
        shapes = branch_paths.branch_shapes(input_shape)
        return [shape for shape in shapes for _ in range(self.num_branches)]

    def get_config(self):
        config = super().get_config()
        activation = self.activation
        if callable(activation):
            activation = keras.activations.serialize(activation)
        config.update(
            {"num_branches": self.num_branches, "activation": activation}
        )
        return config


def _validate_activation(activation):
    if activation is None or activation == "prelu" or callable(activation):
        return activation
    if isinstance(activation, str):
        try:
            keras.activations.get(activation)
        except ValueError:
            raise ValueError(
                f"Unknown activation {activation!r}. Use a Keras activation "
                "name (such as 'relu', 'gelu', 'swish'), 'prelu', a callable "
                f"or None. Received: activation={activation!r}"
            ) from None
        return activation
    raise TypeError(
        "`activation` must be a Keras activation name, 'prelu', a callable "
        f"or None. Received: activation={activation!r}"
    )
