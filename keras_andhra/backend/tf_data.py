"""The `tf.data` graph of the image pipeline (`keras_andhra.data`).

`tf.data` feeds `fit` on every Keras backend, so this module is imported
whatever the backend is, and only when a pipeline is built (importing
TensorFlow costs seconds and memory that JAX and PyTorch users need not
pay otherwise). What the pipeline does is decided in `keras_andhra.data`;
this module only says it to TensorFlow.

Randomness is stateless: an epoch's order and augmentation follow from
`(seed, epoch)`, and the epoch comes from a counter that the dataset
advances when an epoch's iteration starts (and that `EpochSync` sets
after a resume), so a run restarted from a backup sees the batches an
uninterrupted run would have seen.
"""

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def epoch_counter():
    """A counter of the epochs a training dataset has started."""
    return tf.Variable(0, dtype="int64", trainable=False, name="epoch")


def set_counter(counter, value):
    counter.assign(int(value))


def array_dataset(
    images,
    labels,
    batch_size,
    transform,
    shuffle_seed=None,
    counter=None,
    deterministic=None,
):
    """Batches of in-memory `(images, labels)`, transformed per batch.

    Args:
        images, labels: NumPy arrays with the examples on the first axis.
        batch_size: Examples per batch; the last batch may be smaller.
        transform: `transform(images, labels, seed) -> (images, labels)`
            on one batch, `seed` a stateless seed `(2,)` int32 unique to
            the (epoch, batch), or `None` when `shuffle_seed` is `None`.
        shuffle_seed: Int, or `None` for the arrays' order and no
            randomness (validation and test).
        counter: The epoch counter, with `shuffle_seed`.
        deterministic: Passed to the parallel `map`.
    """
    num_examples = len(labels)
    num_batches = -(-num_examples // batch_size)
    # One element holding the whole arrays, repeated by reference: the
    # arrays enter the graph once, not as constants of every function.
    arrays = tf.data.Dataset.from_tensors((images, labels)).repeat()

    def batches(epoch):
        if shuffle_seed is None:
            order = tf.range(num_examples, dtype="int64")
        else:
            keys = tf.random.stateless_uniform(
                [num_examples], _seed(shuffle_seed, epoch, 0)
            )
            order = tf.cast(tf.argsort(keys), "int64")
        indices = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        steps = tf.data.Dataset.range(num_batches)
        return tf.data.Dataset.zip((indices, steps, arrays)).map(
            lambda index, step, data: _gather_and_transform(
                index, step, data, epoch, shuffle_seed, transform
            ),
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic,
        )

    return _epochs(batches, shuffle_seed, counter, num_batches, deterministic)


def _gather_and_transform(index, step, data, epoch, shuffle_seed, transform):
    images, labels = data
    images = tf.gather(images, index)
    labels = tf.gather(labels, index)
    seed = None
    if shuffle_seed is not None:
        seed = _seed(shuffle_seed, epoch, step + 1)
    return transform(images, labels, seed)


def stream_dataset(
    dataset,
    batch_size,
    transform,
    num_examples,
    keep=None,
    shuffle_seed=None,
    shuffle_buffer=10_000,
    counter=None,
    deterministic=None,
):
    """Batches of a streamed `(image, label)` dataset, transformed per batch.

    For sets too large to hold in memory. `keep` (a boolean NumPy mask
    over the stream's examples) selects a split. Shuffling goes through a
    buffer: the order of a resumed run is not the uninterrupted run's
    (augmentation still is, per epoch and batch).
    """
    if keep is not None:
        mask = tf.constant(keep)
        dataset = dataset.enumerate().filter(lambda i, _: mask[i])
        dataset = dataset.map(lambda _, example: example)
    num_batches = -(-num_examples // batch_size)

    def batches(epoch):
        data = dataset
        if shuffle_seed is not None:
            data = data.shuffle(shuffle_buffer, seed=shuffle_seed)
        data = data.batch(batch_size)
        steps = tf.data.Dataset.range(num_batches)
        return tf.data.Dataset.zip((data, steps)).map(
            lambda example, step: transform(
                example[0],
                example[1],
                None
                if shuffle_seed is None
                else _seed(shuffle_seed, epoch, step + 1),
            ),
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic,
        )

    return _epochs(batches, shuffle_seed, counter, num_batches, deterministic)


def _epochs(batches, shuffle_seed, counter, num_batches, deterministic):
    """One epoch of `batches(epoch)` per pass, prefetched.

    A shuffled split reads its epoch from the counter when a pass starts
    (and advances it); an unshuffled one is the same every pass.
    """
    if shuffle_seed is None:
        dataset = batches(tf.constant(0, "int64"))
    else:
        dataset = tf.data.Dataset.from_tensors(0).flat_map(
            lambda _: batches(counter.assign_add(1) - 1)
        )
    dataset = dataset.apply(
        tf.data.experimental.assert_cardinality(num_batches)
    )
    options = tf.data.Options()
    if deterministic is not None:
        options.deterministic = deterministic
    return dataset.with_options(options).prefetch(AUTOTUNE)


def _seed(seed, epoch, step):
    """A stateless seed `(2,)` from the run's seed, the epoch and the step."""
    mixed = tf.cast(epoch, "int64") * 1_000_003 + tf.cast(step, "int64")
    return tf.stack(
        [
            tf.constant(seed % 2**31, "int64"),
            mixed % 2**31,
        ]
    )


def augment(images, seed, padding, flip):
    """Zero-pad, crop back at random offsets, flip at random: per image.

    `images` is a batch `(n, height, width, channels)`; vectorised with
    gathers (no per-image ops).
    """
    shape = tf.shape(images)
    n, height, width = shape[0], shape[1], shape[2]
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2)
    )
    if padding:
        padded = tf.pad(
            images, [[0, 0], [padding, padding], [padding, padding], [0, 0]]
        )
        offsets = tf.random.stateless_uniform(
            [n, 2], crop_seed, maxval=2 * padding + 1, dtype="int32"
        )
        rows = offsets[:, :1] + tf.range(height)[None]
        columns = offsets[:, 1:] + tf.range(width)[None]
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, columns, axis=2, batch_dims=1)
    if flip:
        flips = tf.random.stateless_uniform([n], flip_seed) < 0.5
        images = tf.where(
            flips[:, None, None, None], tf.reverse(images, [2]), images
        )
    return images


def normalize(images, mean, std, scale, dtype):
    """`(images * scale - mean) / std`, per channel, in `dtype`."""
    images = tf.cast(images, "float32") * scale
    if mean is not None:
        images = (images - mean) / std
    return tf.cast(images, dtype)


def resize(images, size):
    return tf.image.resize(images, size)


def cast_labels(labels):
    return tf.cast(labels, "int32")


def to_numpy(dataset):
    """Every `(image, label)` batch of a dataset, as two NumPy arrays."""
    images, labels = [], []
    for image, label in dataset.as_numpy_iterator():
        images.append(image)
        labels.append(label)
    import numpy as np

    if not images:
        return None, None
    return np.concatenate(images), np.concatenate(labels)


def labels_of(dataset):
    """The labels of a streamed `(image, label)` dataset, one pass."""
    import numpy as np

    parts = [
        label
        for label in dataset.map(lambda _, y: y)
        .batch(8192)
        .prefetch(AUTOTUNE)
        .as_numpy_iterator()
    ]
    return np.concatenate(parts) if parts else np.zeros((0,), "int64")
