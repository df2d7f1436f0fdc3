def load_digits(test_fraction=0.2, seed=0):
    """Loads scikit-learn's bundled 8x8 digits as an image dataset.

    1,797 real handwritten digits ship inside scikit-learn, so this works
    without a network. Images are scaled to [0, 1] and given a channel
    axis; the split is stratified by class and fixed by `seed`.

    Args:
        test_fraction: Float in (0, 1), the share of images held out.
        seed: Int, the seed of the split.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: float32 images of shape
        `(n, 8, 8, 1)` and int labels 0..9.

    Example:

    ```python
    import keras_andhra as ka

    (x_train, y_train), (x_test, y_test) = ka.data.load_digits()
    x_train.shape  # (1437, 8, 8, 1)
    ```
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            "`test_fraction` must be between 0 and 1 (exclusive), the share "
            f"of images to hold out. Received: test_fraction={test_fraction}"
        )
    from sklearn import datasets
    from sklearn import model_selection

    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    labels = digits.target.astype("int64")
    x_train, x_test, y_train, y_test = model_selection.train_test_split(
        images,
        labels,
        test_size=test_fraction,
        random_state=seed,
        stratify=labels,
    )
    return (x_train, y_train), (x_test, y_test)
