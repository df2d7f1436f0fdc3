import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class ImageData:
    """The three splits of an image set, as batched `tf.data` pipelines.

    What `load_dataset` returns. `train` shuffles and augments (a new
    order and new draws every epoch, all fixed by `seed`); `validation`
    and `test` are read in order, normalised only. Every split yields
    `(images, labels)` batches that `fit`, `evaluate` and
    `keras_andhra.evaluation.rank_heads` take on every backend.

    Keep to one rule: choose models, epochs and heads on `validation`,
    and read `test` once, at the end. `keras-andhra reproduce` does.

    Attributes:
        name: The source's name.
        train, validation, test: `tf.data.Dataset`s of `(images, labels)`
            batches (images `(batch, height, width, channels)` in the
            pipeline's dtype, labels int32 class indices).
        num_classes: Number of classes.
        class_names: Their names, in label order.
        image_shape: `(height, width, channels)`.
        num_examples: `{"train": ..., "validation": ..., "test": ...}`.
        batch_size: Examples per batch.
        normalization: The `(mean, std)` per channel applied to pixels
            scaled to [0, 1], or `None`.
        augmentation: The training split's `Augmentation`, or `None`.
        seed: The seed of the training order and augmentation.

    Example:

    ```python
    import keras_andhra as ka

    data = ka.data.load_dataset("digits", batch_size=64)
    print(data)  # sizes, shape, normalisation and augmentation
    model = ka.models.abnet(
        0, width=4, num_levels=1, input_shape=data.image_shape
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    # The pipeline shuffles (by seed and epoch): shuffle=False for Keras.
    model.fit(data.train, validation_data=data.validation, epochs=1,
              callbacks=[data.epoch_sync()], shuffle=False, verbose=0)
    ```
    """

    name: str
    train: object
    validation: object
    test: object
    num_classes: int
    class_names: list
    image_shape: tuple
    num_examples: dict
    batch_size: int
    normalization: tuple
    augmentation: object
    seed: int
    counter: object = dataclasses.field(default=None, repr=False)

    def epoch_sync(self):
        """A callback that keeps the training order in step with `fit`.

        The training split draws each epoch's order and augmentation from
        `(seed, epoch)`. Without this callback the epoch is the number of
        passes made so far; with it, a run resumed by
        `keras.callbacks.BackupAndRestore` (or `fit(initial_epoch=...)`)
        continues with the batches an uninterrupted run would have seen.

        Returns:
            A `keras.callbacks.Callback` to pass to `fit`.
        """
        return EpochSync(self.counter)

    def __str__(self):
        counts = self.num_examples
        mean_std = "none"
        if self.normalization is not None:
            mean, std = self.normalization
            mean_std = (
                f"mean {tuple(round(m, 4) for m in mean)}, "
                f"std {tuple(round(s, 4) for s in std)}"
            )
        augmentation = "none"
        if self.augmentation is not None:
            augmentation = f"pad {self.augmentation.padding} + random crop" + (
                " + flip" if self.augmentation.flip else ""
            )
        return (
            f"{self.name}: {counts['train']} train / "
            f"{counts['validation']} validation / {counts['test']} test "
            f"images of shape {self.image_shape}, {self.num_classes} "
            f"classes; batches of {self.batch_size}; normalisation "
            f"{mean_std}; augmentation {augmentation}"
        )


class EpochSync(keras.callbacks.Callback):
    """Sets the training pipeline's epoch at the first epoch of `fit`.

    Made by `ImageData.epoch_sync()`. Only the first epoch of each `fit`
    call is set: later ones advance with the pipeline, whose next epoch
    Keras may start reading before `on_epoch_begin`.
    """

    def __init__(self, counter):
        super().__init__()
        self.counter = counter
        self._first = True

    def on_train_begin(self, logs=None):
        self._first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first and self.counter is not None:
            from keras_andhra.backend import tf_data

            tf_data.set_counter(self.counter, epoch)
        self._first = False
