"""Image folders as a `Source`: one subfolder per class."""

import os

from keras_andhra.data import splits
from keras_andhra.data.sources import SPLIT_SEED
from keras_andhra.data.sources import TEST_FRACTION
from keras_andhra.data.sources import from_loaded


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
    source = from_loaded(os.path.basename(os.path.normpath(path)), loaded)
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
