"""tensorflow-datasets image-classification sets as a `Source`."""

import difflib
import socket

import numpy as np

from keras_andhra.data import sources
from keras_andhra.data import splits
from keras_andhra.data.sources import OFFLINE
from keras_andhra.data.sources import REFERENCE_NORMALIZATION
from keras_andhra.data.sources import SPLIT_SEED
from keras_andhra.data.sources import TEST_FRACTION
from keras_andhra.data.sources import Source
from keras_andhra.data.sources import Split

_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


def from_tfds(
    name, data_dir=None, image_size=None, in_memory="auto", timeout=3.0
):
    """A source from a tensorflow-datasets image-classification set."""
    tfds = _import_tfds(name)
    builder = _builder(tfds, name, data_dir)
    info = builder.info
    keys, label = _supervised_keys(info, name)
    # Without metadata (tfds.testing.mock_data) the splits are unknown:
    # the standard names are tried.
    splits_available = list(info.splits.keys()) or ["train", "test"]
    if "train" not in splits_available:
        raise ValueError(
            f"{name!r} has no 'train' split (it has {splits_available})."
        )
    shape = _image_shape(info, keys, name, image_size)
    num_train = (
        info.splits["train"].num_examples if "train" in info.splits else 0
    )
    if in_memory == "auto":
        pixels = num_train * int(np.prod([d or 1 for d in shape]))
        limit = sources.MEMORY_LIMIT
        in_memory = 0 < limit and pixels <= limit
    train = _tfds_split(builder, "train", in_memory, image_size, timeout)
    if "test" in splits_available:
        test = _tfds_split(builder, "test", in_memory, image_size, timeout)
    else:
        train, test = _carve_test(train, name, in_memory)
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


def _builder(tfds, name, data_dir):
    """The set's tfds builder; an unknown name gets the closest names."""
    try:
        return tfds.builder(name, data_dir=data_dir)
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


def _supervised_keys(info, name):
    """The `(image, label)` feature names and the class-label feature."""
    keys = info.supervised_keys
    label = info.features[keys[1]] if keys else None
    if keys is None or not hasattr(label, "num_classes"):
        raise ValueError(
            f"{name!r} is not an image-classification set: it has no "
            "(image, class label) pair to train on."
        )
    return keys, label


def _image_shape(info, keys, name, image_size):
    """The images' shape, resized to `image_size` when given."""
    shape = tuple(info.features[keys[0]].shape)
    if image_size is None and None in shape[:2]:
        raise ValueError(
            f"{name!r} has images of different sizes {shape}: pass "
            "`image_size=(height, width)` to resize them."
        )
    if image_size is not None:
        shape = tuple(image_size) + shape[2:]
    return shape


def _carve_test(train, name, in_memory):
    """A fixed stratified test split for a set that has none."""
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
    return train.subset(kept), train.subset(held)


def _tfds_split(builder, split, in_memory, image_size, timeout):
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
        if not _reachable(timeout):
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
