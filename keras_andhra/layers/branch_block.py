import keras
from keras import ops

from keras_andhra.layers import branch_execution
from keras_andhra.layers import branch_paths
from keras_andhra.layers import stacked_execution

_EXECUTIONS = ("auto", "loop", "stacked")


@keras.saving.register_keras_serializable(package="keras_andhra")
class BranchBlock(keras.layers.Layer):
    """Applies an independent copy of a block to every incoming branch.

    After an ANDHRA split the branches never share weights: every layer
    below the split is a fresh copy. `BranchBlock` takes a block, a layer,
    a `keras.Sequential`, a functional `keras.Model`, or a function that
    builds one, and makes one copy of it per branch when it is built. The
    copies are ordinary Keras layers (`block.copies[i]`), each with its own
    weights, so a branch can be inspected, frozen or extracted on its own.

    How the copies run is a matter of speed, never of results:

    * `"loop"` calls each copy on its own branch: the reference.
    * `"stacked"` concatenates the branches along the channel axis and runs
      every layer once for all branches with the copies' weights side by
      side: grouped convolution for `Conv*D`, one batched einsum for
      `Dense`, one normalisation for `BatchNormalization`, one call for
      activations, pooling, padding and residual adds. Layers without a
      stacked rule run one copy per branch inside the stacked execution.
    * `"auto"` (default) picks whichever was measured faster on the active
      backend and device (`benchmarks/README.md`); the loop where nothing
      was measured.

    All executions give the same outputs from the same weights (tested to
    1e-5 on every backend) and train the same variables.

    Args:
        block: A `keras.layers.Layer` (including `Sequential` and functional
            models), cloned from its config once per branch; or a function
            without arguments that returns a new layer each time it is
            called.
        execution: `"auto"`, `"loop"` or `"stacked"`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A list of branch tensors (from `AndhraSplit` or an earlier
            `BranchBlock`). All branches must have the same shape to run
            stacked. A single tensor is treated as one branch.
        training: Python bool, passed to every copy.

    Returns:
        A list with one output per branch, in the order of `inputs` (a
        single tensor for a single tensor input).

    Example:

    ```python
    import keras
    import keras_andhra as ka

    inputs = keras.Input((16, 16, 3))
    branches = ka.layers.AndhraSplit(2)(inputs)
    branches = ka.layers.BranchBlock(
        lambda: keras.Sequential(
            [keras.layers.Conv2D(8, 3, padding="same"),
             keras.layers.BatchNormalization(),
             keras.layers.ReLU(),
             keras.layers.GlobalAveragePooling2D(),
             keras.layers.Dense(10)]
        )
    )(branches)
    heads = ka.layers.HeadCollector()(branches)  # (batch, 2, 10)
    ```
    """

    def __init__(self, block, execution="auto", **kwargs):
        super().__init__(**kwargs)
        if isinstance(block, keras.layers.Layer):
            self._block_config = keras.saving.serialize_keras_object(block)
            self._builder = None
        elif isinstance(block, dict):
            self._block_config = block
            self._builder = None
        elif callable(block):
            self._block_config = None
            self._builder = block
        else:
            raise TypeError(
                "`block` must be a Keras layer, a Sequential or functional "
                "model, or a function that returns a new layer. Received: "
                f"block={block!r}"
            )
        if execution not in _EXECUTIONS:
            raise ValueError(
                f"`execution` must be one of {_EXECUTIONS}. Received: "
                f"execution={execution!r}"
            )
        self.execution = execution
        self.copies = []
        self._stackable = False
        self._auto_execution = "loop"

    @property
    def resolved_execution(self):
        """The execution that runs: "loop" or "stacked" (after build)."""
        if len(self.copies) < 2 or not self._stackable:
            return "loop"
        if self.execution == "auto":
            return self._auto_execution
        return self.execution

    def build(self, input_shape):
        shapes = branch_paths.branch_shapes(input_shape)
        for i, shape in enumerate(shapes):
            copy = self._new_copy(i)
            if not copy.built:
                copy.build(shape)
            self.copies.append(copy)
        output_shapes = [
            copy.compute_output_shape(shape)
            for copy, shape in zip(self.copies, shapes)
        ]
        self._stackable = len(set(shapes)) == 1 and all(
            isinstance(s, tuple) and len(s) >= 2 and s[-1] is not None
            for s in output_shapes
        )
        # Resolved once: `call` runs every step, eagerly on PyTorch.
        self.prefer_execution()
        if self.execution == "stacked" and not self._stackable:
            raise ValueError(
                "`execution='stacked'` needs branches of one shape whose "
                "outputs have a channel axis (rank 2 or more). Use "
                "`execution='auto'` or `'loop'` here. Received: "
                f"input_shape={input_shape}"
            )

    def prefer_execution(self, per_head_gradients=False):
        """Resolves `execution="auto"` for the training step in use.

        The stacked execution runs a level's branches as one wide kernel.
        A step that takes every head's gradient separately walks only its
        own copy in the loop, but the whole wide kernel when stacked, so
        `"auto"` resolves to the loop for it. `AndhraModel` calls this
        when its gradient aggregator changes; an explicit `"loop"` or
        `"stacked"` is never overridden.

        Args:
            per_head_gradients: Whether the training step computes one
                gradient per head.
        """
        if per_head_gradients:
            # Every head's backward pass walks the whole of a stacked
            # (grouped) kernel, but only its own copy in the loop: with
            # per-head gradients the loop is faster (PyTorch CPU, 8-head
            # ABNet: 1.57x the plain step against 3.5x stacked).
            self._auto_execution = "loop"
        else:
            self._auto_execution = branch_execution.default_branch_execution(
                stacked_execution.max_channels(self.copies[0])
            )

    def _new_copy(self, index):
        name = f"{self.name}_copy{index}"
        # Every copy's variables get their own path. Keras on PyTorch
        # registers parameters by path: copies sharing paths would leave
        # gradients unregistered, never zeroed between steps.
        with keras.name_scope(name):
            if self._builder is not None:
                copy = self._builder()
                if not isinstance(copy, keras.layers.Layer):
                    raise TypeError(
                        "The `block` function must return a Keras layer or "
                        f"model. It returned: {copy!r}"
                    )
                return copy
            # A fresh copy: build() builds it for its own branch.
            config = {
                k: v
                for k, v in self._block_config.items()
                if k not in ("build_config", "compile_config")
            }
            config["config"] = dict(config["config"], name=name)
            return keras.saving.deserialize_keras_object(config)

    def call(self, inputs, training=None):
        tensors, was_list = branch_paths.as_branch_list(inputs)
        if self.resolved_execution == "stacked":
            wide = ops.concatenate(tensors, axis=-1)
            wide = stacked_execution.run_stacked(self.copies, wide, training)
            outputs = ops.split(wide, len(self.copies), axis=-1)
        else:
            outputs = [
                copy(x, training=training)
                for copy, x in zip(self.copies, tensors)
            ]
        return list(outputs) if was_list else outputs[0]

    def compute_output_spec(self, inputs, *args, **kwargs):
        outputs = super().compute_output_spec(inputs, *args, **kwargs)
        tensors, _ = branch_paths.as_branch_list(outputs)
        branch_paths.set_paths(tensors, branch_paths.input_paths(inputs))
        return outputs

    def compute_output_shape(self, input_shape):
        shapes = branch_paths.branch_shapes(input_shape)
        outputs = [
            copy.compute_output_shape(shape)
            for copy, shape in zip(self.copies, shapes)
        ]
        nested = any(isinstance(d, (list, tuple)) for d in input_shape)
        return outputs if nested else outputs[0]

    def get_config(self):
        config = super().get_config()
        if self.copies:
            block = keras.saving.serialize_keras_object(self.copies[0])
        elif self._block_config is not None:
            block = self._block_config
        else:
            block = keras.saving.serialize_keras_object(self._builder())
        config.update({"block": block, "execution": self.execution})
        return config
