from keras_andhra.data import tfds_sets

_NAMES = ("cifar10", "cifar100")


def load_cifar(name="cifar10", data_dir=None, timeout=3.0):
    """Loads CIFAR-10 or CIFAR-100 through tensorflow-datasets, as arrays.

    The arrays behind `load_dataset("cifar10")`, for code that wants
    NumPy: the same reading (prepared data under `data_dir`, or a
    download), and the same fail-fast message without either. No wheel
    ships CIFAR, so this needs tensorflow-datasets and either the data
    prepared under `data_dir` (or its default directory) or a network.

    Args:
        name: `"cifar10"` or `"cifar100"`.
        data_dir: Optional tensorflow-datasets data directory holding the
            prepared dataset.
        timeout: Seconds to wait for the download host before giving up.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images of shape
        `(n, 32, 32, 3)` and int labels.

    Example:

    ```python
    import keras_andhra as ka

    try:
        (x_train, y_train), _ = ka.data.load_cifar("cifar10")
    except (ImportError, RuntimeError) as error:
        print(error)  # offline and no prepared data: says what to do
    ```
    """
    if name not in _NAMES:
        raise ValueError(
            f"`name` must be one of {_NAMES}. Received: name={name!r}"
        )
    source = tfds_sets.from_tfds(
        name, data_dir, in_memory=True, timeout=timeout
    )
    return (
        (source.train.images, source.train.labels),
        (source.test.images, source.test.labels),
    )
