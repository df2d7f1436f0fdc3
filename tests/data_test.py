import os

import keras
import numpy as np
import pytest
from conftest import to_numpy

import keras_andhra as ka
from keras_andhra.data import sources

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def batches(dataset):
    images, labels = [], []
    for x, y in dataset:
        images.append(np.asarray(x))
        labels.append(np.asarray(y))
    return np.concatenate(images), np.concatenate(labels)


def distinct_images(rng, n=24, size=6, channels=3):
    return rng.integers(0, 256, (n, size, size, channels), dtype="uint8")


def test_mnist_5000_splits_are_stratified_and_fixed():
    data = ka.data.load_dataset("mnist-5000", batch_size=500, seed=3)
    assert data.num_examples == {"train": 3600, "validation": 400, "test": 1000}
    assert data.image_shape == (28, 28, 1) and data.num_classes == 10
    _, val_labels = batches(data.validation)
    _, test_labels = batches(data.test)
    assert np.bincount(val_labels).tolist() == [40] * 10
    assert np.bincount(test_labels).tolist() == [100] * 10
    # Another seed changes the training order, not the held-out images.
    other = ka.data.load_dataset("mnist-5000", batch_size=500, seed=4)
    for a, b in ((data.validation, other.validation), (data.test, other.test)):
        np.testing.assert_array_equal(batches(a)[0], batches(b)[0])


def test_training_order_follows_seed_and_epoch():
    def labels(seed, epochs):
        data = ka.data.load_dataset("digits", batch_size=100, seed=seed)
        return [batches(data.train)[1] for _ in range(epochs)]

    first, second = labels(0, 2)
    again = labels(0, 1)[0]
    np.testing.assert_array_equal(first, again)
    assert (first != second).mean() > 0.5
    assert (first != labels(1, 1)[0]).mean() > 0.5
    # Every epoch is a permutation of the same training examples.
    np.testing.assert_array_equal(np.sort(first), np.sort(second))


def test_normalisation_reference_own_and_none():
    data = ka.data.load_dataset("mnist-5000", batch_size=4000)
    images, _ = batches(data.train)
    assert abs(images.mean()) < 1e-3 and abs(images.std() - 1) < 1e-3
    raw = ka.data.load_dataset(
        "mnist-5000", batch_size=4000, normalization=None
    )
    pixels, _ = batches(raw.train)
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    mean, std = data.normalization
    # The same images, in the training order of the same seed.
    np.testing.assert_allclose(images, (pixels - mean[0]) / std[0], atol=1e-5)
    given = ka.data.load_dataset(
        "mnist-5000", batch_size=4000, normalization=(0.5, 0.25)
    )
    np.testing.assert_allclose(
        batches(given.train)[0], (pixels - 0.5) / 0.25, atol=1e-5
    )
    assert sources.REFERENCE_NORMALIZATION["cifar10"] == (
        (0.4914, 0.4822, 0.4465),
        (0.2023, 0.1994, 0.2010),
    )


def test_augmentation_is_a_padded_crop_and_a_flip(rng):
    images = distinct_images(rng)
    labels = np.arange(24) % 3
    data = ka.data.load_dataset(
        ((images, labels), (images[:3], labels[:3])),
        batch_size=8,
        validation_size=0,
        augmentation=ka.data.Augmentation(padding=2, flip=True),
        normalization=None,
        seed=5,
    )
    augmented, order = [], []
    for x, y in data.train:
        augmented.append(np.asarray(x))
    augmented = np.round(np.concatenate(augmented) * 255).astype("uint8")
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    seen = set()
    for image in augmented:
        matches = [
            (index, dy, dx, flip)
            for index in range(len(images))
            for dy in range(5)
            for dx in range(5)
            for flip in (False, True)
            if np.array_equal(
                image,
                (lambda c: c[:, ::-1] if flip else c)(
                    padded[index, dy : dy + 6, dx : dx + 6]
                ),
            )
        ]
        assert matches, "an augmented image is no crop/flip of an original"
        order.append(matches[0][0])
        seen.add(matches[0][1:])
    assert sorted(order) == list(range(24))
    assert len(seen) > 8  # offsets and flips vary


def test_augmentation_validates_its_arguments():
    with pytest.raises(ValueError, match="`padding` must be an int >= 0"):
        ka.data.Augmentation(padding=-1)
    with pytest.raises(ValueError, match="`flip` must be True or False"):
        ka.data.Augmentation(flip="yes")


def test_arrays_give_a_fixed_test_split(rng):
    x = rng.random((50, 5, 5, 1)).astype("float32")
    y = np.arange(50) % 5
    data = ka.data.load_dataset((x, y), batch_size=16, validation_size=5)
    assert data.num_examples == {"train": 35, "validation": 5, "test": 10}
    _, test_labels = batches(data.test)
    assert np.bincount(test_labels).tolist() == [2] * 5


def test_directory_of_images(tmp_path, rng):
    for label in ("cat", "dog"):
        os.makedirs(tmp_path / label)
        for i in range(10):
            image = rng.integers(0, 256, (7, 9, 3)).astype("float32")
            keras.utils.save_img(tmp_path / label / f"{i}.png", image)
    data = ka.data.load_dataset(str(tmp_path), batch_size=4, validation_size=2)
    assert data.class_names == ["cat", "dog"]
    assert data.image_shape == (7, 9, 3)
    assert data.num_examples == {"train": 14, "validation": 2, "test": 4}


@pytest.mark.parametrize(
    "source, kwargs, error, message",
    [
        ("cifar1O", {}, ValueError, "Unknown dataset 'cifar1O'.*'cifar10'"),
        ("./no/such/folder", {}, ValueError, "No directory"),
        (
            "mnist-5000",
            {"validation_size": 4000},
            ValueError,
            "`validation_size` must leave examples",
        ),
        (
            "mnist-5000",
            {"validation_size": 1.5},
            ValueError,
            "`validation_size` as a fraction",
        ),
        (
            "mnist-5000",
            {"batch_size": 0},
            ValueError,
            "`batch_size` must be a positive int",
        ),
        ("mnist-5000", {"dtype": "int8"}, ValueError, "`dtype` must be one"),
        (
            "mnist-5000",
            {"augmentation": "cifar"},
            ValueError,
            "`augmentation` must be 'auto'",
        ),
        (
            "mnist-5000",
            {"normalization": (0.5, -1)},
            ValueError,
            "`normalization` must be",
        ),
        (42, {}, TypeError, "`source` must be a dataset name"),
    ],
)
def test_bad_sources_and_arguments(source, kwargs, error, message):
    with pytest.raises(error, match=message):
        ka.data.load_dataset(source, **kwargs)


def test_empty_directory_and_bad_labels(tmp_path, rng):
    os.makedirs(tmp_path / "empty" / "cat")
    with pytest.raises(ValueError, match="No images in"):
        ka.data.load_dataset(str(tmp_path / "empty"))
    x = rng.random((20, 4, 4, 1)).astype("float32")
    with pytest.raises(ValueError, match="Labels out of range"):
        ka.data.load_dataset((x, np.arange(20) - 1))
    with pytest.raises(ValueError, match="labels must be whole class"):
        ka.data.load_dataset((x, np.arange(20) + 0.5))
    with pytest.raises(ValueError, match="one class index per image"):
        ka.data.load_dataset((x, np.arange(19)))
    nan = x.copy()
    nan[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="hold NaN"):
        ka.data.load_dataset((nan, np.arange(20) % 2))


def fit_abnet(data, epochs=1, callbacks=()):
    model = ka.models.abnet(
        0,
        width=2,
        num_levels=1,
        num_classes=data.num_classes,
        input_shape=data.image_shape,
    )
    model.compile(optimizer="sgd", loss=CE, metrics=["accuracy"])
    history = model.fit(
        data.train,
        validation_data=data.validation,
        epochs=epochs,
        callbacks=[data.epoch_sync(), *callbacks],
        shuffle=False,
        verbose=0,
    )
    return model, history


@pytest.mark.parametrize("streamed", [False, True])
def test_cifar_path_offline_with_mock_data(monkeypatch, streamed):
    tfds = pytest.importorskip("tensorflow_datasets")
    if streamed:
        monkeypatch.setattr(sources, "MEMORY_LIMIT", 0)
    with tfds.testing.mock_data(num_examples=40):
        data = ka.data.load_dataset(
            "cifar10", batch_size=8, validation_size=8, seed=1
        )
    assert data.image_shape == (32, 32, 3) and data.num_classes == 10
    assert data.normalization == sources.REFERENCE_NORMALIZATION["cifar10"]
    assert data.augmentation == ka.data.Augmentation(4, True)
    assert data.num_examples["train"] == 32
    assert data.num_examples["validation"] == 8
    assert len(data.class_names) == 10
    _, history = fit_abnet(data)
    assert np.isfinite(history.history["val_loss"][-1])
    report = ka.evaluation.rank_heads(
        fit_abnet(data)[0],
        data.test,
        validation_data=data.validation,
        verbose=0,
    )
    assert report.num_examples == data.num_examples["test"]


def test_cifar_without_data_or_network_fails_fast(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(RuntimeError, match="cannot be downloaded"):
        ka.data.load_dataset("cifar10", data_dir=str(tmp_path))


def test_resumed_fit_sees_the_uninterrupted_batches(tmp_path):
    """A run stopped mid-epoch and resumed ends with the same weights."""

    class Crash(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(to_numpy(self.model.optimizer.iterations)) == 9:
                raise KeyboardInterrupt

    def data():
        return ka.data.load_dataset(
            "digits",
            batch_size=256,
            seed=2,
            augmentation=ka.data.Augmentation(padding=1, flip=False),
        )

    keras.utils.set_random_seed(7)
    whole, _ = fit_abnet(data(), epochs=3)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path))
    keras.utils.set_random_seed(7)
    with pytest.raises(KeyboardInterrupt):
        fit_abnet(data(), epochs=3, callbacks=[backup, Crash()])
    keras.utils.set_random_seed(11)  # a restarted process: other weights
    resumed, _ = fit_abnet(data(), epochs=3, callbacks=[backup])
    for a, b in zip(whole.weights, resumed.weights):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=1e-6)
