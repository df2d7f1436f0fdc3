import os
import socket

_HOST = ("www.cs.toronto.edu", 443)
_NAMES = ("cifar10", "cifar100")


def load_cifar(name="cifar10", data_dir=None, timeout=3.0):
    """Loads CIFAR-10 or CIFAR-100 through tensorflow-datasets.

    No wheel ships CIFAR, so this needs either the data prepared by
    tensorflow-datasets under `data_dir` (or its default directory), or a
    network connection to download it. Without either it fails within
    seconds with a message naming the fix, instead of letting
    tensorflow-datasets retry for minutes.

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
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ImportError(
            f"Loading {name} needs tensorflow-datasets: `pip install "
            "tensorflow-datasets importlib_resources`, then pass the "
            "directory of prepared data with `--data-dir` (`data_dir=`) or "
            "let it download."
        ) from None
    builder = tfds.builder(name, data_dir=data_dir)
    prepared = os.path.isdir(builder.data_dir) and bool(
        os.listdir(builder.data_dir)
    )
    if not prepared and not _reachable(timeout):
        raise RuntimeError(
            f"{name} is not prepared under {builder.data_dir} and cannot be "
            "downloaded (no network). Prepare it on a machine with a "
            "network (`tfds build " + name + "`) and pass its directory "
            "with `--data-dir` (`data_dir=`)."
        )
    train, test = tfds.as_numpy(
        tfds.load(
            name,
            split=["train", "test"],
            batch_size=-1,
            as_supervised=True,
            data_dir=data_dir,
            download=not prepared,
        )
    )
    return train, test


def _reachable(timeout):
    try:
        with socket.create_connection(_HOST, timeout=timeout):
            return True
    except OSError:
        return False
