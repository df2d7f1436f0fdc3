"""Stacked execution: the N copies of a block run as one wider block.

`BranchBlock` keeps one real copy of its block per branch; that loop is the
reference. The stacked execution concatenates the branches along the last
(channel) axis and runs each layer of the block once for all copies, with
the copies' own weights gathered into one kernel:

* `Conv1D/2D/3D` -> one grouped convolution (`groups = N`);
* `Dense` -> one batched einsum over a branch axis;
* `SizeGatedDense` -> the same, times every copy's own gate;
* `BatchNormalization` -> one normalisation over N * C channels, moving
  statistics written back to every copy;
* `PReLU` -> one PReLU with the copies' slopes side by side;
* weightless per-channel layers (activations, pooling, padding, dropout,
  residual `Add` and the other merges) -> called once on the wide tensor;
* `Flatten`, `Softmax` -> reshaped so each branch keeps to its own slice.

Any other layer or operation runs one copy per branch on its slice of the
wide tensor, so every block can run stacked. The invariant between layers:
the wide tensor equals `concatenate([out_0, ..., out_{N-1}], axis=-1)`.
"""

import weakref

import keras
from keras import ops

from keras_andhra.compat import functional_graph
from keras_andhra.layers import activation_kinds
from keras_andhra.layers.size_gated_dense import SizeGatedDense

_CHANNEL_WISE_LAYERS = (
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.Identity,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
)

_CHANNELS_LAST_LAYERS = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
    keras.layers.UpSampling3D,
)

_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def run_stacked(copies, wide, training=None):
    """Runs `copies` (same architecture) on the wide tensor `wide`."""
    layer = copies[0]
    if isinstance(layer, keras.Sequential):
        for k in range(len(layer.layers)):
            wide = run_stacked([c.layers[k] for c in copies], wide, training)
        return wide
    if functional_graph.is_functional(layer):
        return _run_functional(copies, wide, training)
    rule = _rule_for(layer)
    if rule is None:
        return run_split(copies, (wide,), {"training": training})
    return rule(copies, wide, training)


def run_split(ops_per_branch, args, kwargs):
    """Runs one op per branch on its slice of every wide tensor in `args`."""
    num = len(ops_per_branch)
    leaves = [
        ops.split(leaf, num, axis=-1) if _is_tensor(leaf) else None
        for leaf in keras.tree.flatten(args)
    ]
    if isinstance(ops_per_branch[0], keras.layers.Layer):
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
    else:
        kwargs = {k: v for k, v in kwargs.items() if k != "training"}
    outputs = []
    for i, op in enumerate(ops_per_branch):
        flat = [
            pieces[i] if pieces is not None else leaf
            for pieces, leaf in zip(leaves, keras.tree.flatten(args))
        ]
        branch_args = keras.tree.pack_sequence_as(args, flat)
        outputs.append(op(*branch_args, **kwargs))
    return ops.concatenate(outputs, axis=-1)


def rule_name(layer):
    """Names how `layer` runs stacked: "split" when it runs per branch."""
    if isinstance(layer, keras.Sequential) or functional_graph.is_functional(
        layer
    ):
        return "graph"
    rule = _rule_for(layer)
    return "split" if rule is None else rule.__name__.lstrip("_")


def max_channels(layer):
    """The most filters or units of any layer inside `layer`."""
    if isinstance(layer, keras.Model):
        return max([max_channels(inner) for inner in layer.layers] or [0])
    return getattr(layer, "filters", None) or getattr(layer, "units", 0)


def _rule_for(layer):
    kind = type(layer)
    if kind in _CONVOLUTIONS:
        if (
            layer.groups == 1
            and layer.padding in ("same", "valid")
            and layer.data_format == "channels_last"
            and _is_plain(layer)
            and _is_elementwise(layer.activation)
        ):
            return _grouped_conv
        return None
    if kind is keras.layers.Dense:
        if _is_plain(layer) and _is_elementwise(layer.activation):
            return _batched_dense
        return None
    if kind is SizeGatedDense:
        if _is_elementwise(layer.activation):
            return _gated_dense
        return None
    if kind is keras.layers.BatchNormalization:
        if (
            layer.axis in (-1, layer.input_spec.ndim - 1)
            and not layer.synchronized
            and not getattr(layer, "renorm", False)
        ):
            return _wide_batch_norm
        return None
    if kind is keras.layers.PReLU:
        alpha_shape = tuple(layer.alpha.shape)
        if alpha_shape[-1] > 1 and all(d == 1 for d in alpha_shape[:-1]):
            return _wide_prelu
        return None
    if kind is keras.layers.Activation:
        if _is_elementwise(layer.activation):
            return _channel_wise
        name = activation_kinds.name(layer.activation)
        if name in ("softmax", "log_softmax"):
            return _per_branch_last_axis
        return None
    if kind is keras.layers.Softmax:
        return _per_branch_last_axis if layer.axis in (-1,) else None
    if kind is keras.layers.Flatten:
        if layer.data_format == "channels_last":
            return _flatten
        return None
    if kind in _CHANNEL_WISE_LAYERS:
        return _channel_wise
    if kind in _CHANNELS_LAST_LAYERS:
        if getattr(layer, "data_format", "channels_last") == "channels_last":
            return _channel_wise
        return None
    return None


def _grouped_conv(copies, wide, training):
    layer = copies[0]
    kernel = ops.concatenate([c.kernel.value for c in copies], axis=-1)
    outputs = ops.conv(
        wide,
        kernel,
        strides=list(layer.strides),
        padding=layer.padding,
        dilation_rate=layer.dilation_rate,
        data_format=layer.data_format,
    )
    if layer.use_bias:
        outputs = ops.add(
            outputs, ops.concatenate([c.bias.value for c in copies], axis=-1)
        )
    return layer.activation(outputs)


def _batched_dense(copies, wide, training):
    layer = copies[0]
    num = len(copies)
    units_in = layer.kernel.shape[0]
    leading = ops.shape(wide)[:-1]
    x = ops.reshape(wide, (-1, num, units_in))
    kernel = ops.stack([c.kernel.value for c in copies], axis=0)
    y = ops.einsum("bni,nio->bno", x, kernel)
    if layer.use_bias:
        y = ops.add(y, ops.stack([c.bias.value for c in copies], axis=0))
    y = layer.activation(y)
    return ops.reshape(y, tuple(leading) + (num * layer.units,))


def _gated_dense(copies, wide, training):
    layer = copies[0]
    num = len(copies)
    features = layer.kernel.shape[0] - int(layer.feed_size)
    leading = ops.shape(wide)[:-1]
    x = ops.reshape(wide, (-1, num, features))
    if layer.feed_size:
        sizes = ops.stack([ops.cast(c.size.value, x.dtype) for c in copies])
        x = ops.concatenate(
            [ops.ones_like(x[..., :1]) * sizes[None, :, None], x], axis=-1
        )
    weights = [copy.gated_weights() for copy in copies]
    kernel = ops.stack([w[0] for w in weights], axis=0)
    y = ops.einsum("bni,nio->bno", x, kernel)
    y = ops.add(y, ops.stack([w[1] for w in weights], axis=0))
    gate = None
    if weights[0][2] is not None:
        gate = ops.stack([w[2] for w in weights], axis=0)[None]
    y = layer.apply_gate(y, gate)
    return ops.reshape(y, tuple(leading) + (num * layer.capacity,))


def _wide_batch_norm(copies, wide, training):
    layer = copies[0]
    num = len(copies)
    # Mirrors keras.layers.BatchNormalization.call, channel by channel.
    dtype = keras.backend.result_type(wide.dtype, "float32")
    wide = ops.cast(wide, dtype)
    moving_mean = ops.concatenate(
        [ops.cast(c.moving_mean.value, dtype) for c in copies], axis=0
    )
    moving_variance = ops.concatenate(
        [ops.cast(c.moving_variance.value, dtype) for c in copies], axis=0
    )
    gamma = beta = None
    if layer.scale:
        gamma = ops.concatenate(
            [ops.cast(c.gamma.value, dtype) for c in copies], 0
        )
    if layer.center:
        beta = ops.concatenate(
            [ops.cast(c.beta.value, dtype) for c in copies], 0
        )
    if training and layer.trainable:
        axes = list(range(len(wide.shape) - 1))
        mean, variance = ops.moments(wide, axes=axes)
        new_mean = ops.split(
            moving_mean * layer.momentum + mean * (1.0 - layer.momentum), num
        )
        new_variance = ops.split(
            moving_variance * layer.momentum
            + variance * (1.0 - layer.momentum),
            num,
        )
        for copy, m, v in zip(copies, new_mean, new_variance):
            copy.moving_mean.assign(m)
            copy.moving_variance.assign(v)
    else:
        mean, variance = moving_mean, moving_variance
    outputs = ops.batch_normalization(
        x=wide,
        mean=mean,
        variance=variance,
        axis=-1,
        offset=beta,
        scale=gamma,
        epsilon=layer.epsilon,
    )
    return ops.cast(outputs, layer.compute_dtype)


def _wide_prelu(copies, wide, training):
    alpha = ops.concatenate([c.alpha.value for c in copies], axis=-1)
    return ops.relu(wide) - alpha * ops.relu(-wide)


def _channel_wise(copies, wide, training):
    layer = copies[0]
    if isinstance(wide, (list, tuple)):
        return layer(list(wide), training=training)
    return layer(wide, training=training)


def _per_branch_last_axis(copies, wide, training):
    num = len(copies)
    shape = ops.shape(wide)
    channels = wide.shape[-1] // num
    x = ops.reshape(wide, tuple(shape[:-1]) + (num, channels))
    return ops.reshape(copies[0](x, training=training), shape)


def _flatten(copies, wide, training):
    num = len(copies)
    spatial = tuple(wide.shape[1:-1])
    channels = wide.shape[-1] // num
    x = ops.reshape(wide, (-1,) + spatial + (num, channels))
    rank = len(spatial)
    x = ops.transpose(
        x, (0, rank + 1) + tuple(range(1, rank + 1)) + (rank + 2,)
    )
    return ops.reshape(x, (-1, num * channels * _prod(spatial)))


def _run_functional(copies, wide, training):
    groups = _functional_groups(copies)

    def operation_fn(op):
        group = groups[id(op)]

        def call(*args, **kwargs):
            layer = group[0]
            if isinstance(layer, keras.layers.Layer) and len(args) == 1:
                if (
                    isinstance(layer, keras.Model)
                    or _rule_for(layer) is not None
                ):
                    return run_stacked(group, args[0], training)
            kwargs["training"] = training
            return run_split(group, args, kwargs)

        return call

    return functional_graph.run_graph(copies[0], wide, operation_fn)


_GROUP_CACHE = weakref.WeakKeyDictionary()


def _functional_groups(copies):
    """Maps each operation of the first copy to that op in every copy."""
    cached = _GROUP_CACHE.get(copies[0])
    if cached is None or cached[0] != [id(c) for c in copies]:
        groups = {
            id(op): [c.operations[k] for c in copies]
            for k, op in enumerate(copies[0].operations)
        }
        cached = ([id(c) for c in copies], groups)
        _GROUP_CACHE[copies[0]] = cached
    return cached[1]


def _is_plain(layer):
    """True for a float layer without LoRA or quantization."""
    return (
        getattr(layer, "lora_rank", None) in (None, 0)
        and getattr(layer, "quantization_mode", None) is None
    )


def _is_elementwise(activation):
    return activation_kinds.name(activation) in activation_kinds.ELEMENTWISE


def _is_tensor(x):
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _prod(dims):
    result = 1
    for d in dims:
        result *= d
    return result
