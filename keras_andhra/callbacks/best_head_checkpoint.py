import os

import keras
import numpy as np

from keras_andhra.evaluation import extract_head
from keras_andhra.models import head_metrics
from keras_andhra.models import head_paths


class BestHeadCheckpoint(keras.callbacks.Callback):
    """Tracks the best head every epoch and saves it when it improves.

    At the end of every epoch the callback reads one metric per head from
    the logs, picks the best head, and logs its index under
    `best_head_index` (so it shows in the progress bar and in
    `history.history`). When the best head's value beats every earlier
    epoch's and `filepath` is given, that head is extracted with
    `extract_head` and saved as a standalone `.keras` model, which loads
    without keras_andhra.

    Rank on validation metrics (`"val_accuracy"`, the default): choosing a
    head on the data that scores it inflates its score.

    Args:
        monitor: The per-head metric, named as it would be without the
            head: `"val_accuracy"` reads `val_<head>_accuracy` for every
            head, `"val_loss"` reads `val_<head>_loss`, `"accuracy"` the
            training values.
        mode: `"auto"`, `"max"` or `"min"`. `"auto"` minimises losses and
            error metrics (`"val_loss"`, `"val_mae"`, ...) and maximises the
            rest.
        filepath: Optional path ending in `.keras` where the best head is
            saved. It may contain `{epoch}` (1-based), `{head}` and any
            log key, e.g. `"best_{head}_{epoch:02d}.keras"`.
        verbose: 1 prints a line when the best value improves.

    Attributes:
        best_head: The name of the best head so far, or `None`.
        best: Its monitored value.
        best_epoch: The (0-based) epoch it was reached in.
        history: The best head's name after every epoch (`None` for an
            epoch in which every head's value was NaN). A head whose value
            is NaN is never the best.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, num_levels=1, input_shape=(8, 8, 1))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = np.random.rand(64, 8, 8, 1)
    y = np.random.randint(0, 10, size=(64,))
    tracker = ka.callbacks.BestHeadCheckpoint(monitor="val_accuracy")
    model.fit(x, y, validation_split=0.25, epochs=2, callbacks=[tracker],
              verbose=0)
    tracker.history  # the best head after each epoch
    ```
    """

    def __init__(
        self, monitor="val_accuracy", mode="auto", filepath=None, verbose=0
    ):
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                "`monitor` must be a metric name such as 'val_accuracy'. "
                f"Received: monitor={monitor!r}"
            )
        if mode not in head_metrics.MODES:
            raise ValueError(
                "`mode` must be 'auto', 'min' or 'max'. Received: "
                f"mode={mode!r}"
            )
        if filepath is not None and not str(filepath).endswith(".keras"):
            raise ValueError(
                "`filepath` must end in '.keras': the best head is saved as "
                f"a whole standalone model. Received: filepath={filepath!r}"
            )
        self.monitor = monitor
        self.mode = mode
        self.filepath = None if filepath is None else str(filepath)
        self.verbose = verbose
        lower = head_metrics.lower_is_better(monitor, mode)
        self._better = np.less if lower else np.greater

    def on_train_begin(self, logs=None):
        self.head_names = head_paths.collector_of(self.model).head_names
        self._keys = head_metrics.head_keys(self.monitor, self.head_names)
        self.best_head = None
        self.best = None
        self.best_epoch = None
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        values = head_metrics.read(
            logs, self._keys, "BestHeadCheckpoint", self.monitor
        )
        if values is None:
            return
        if np.all(np.isnan(values)):
            # Every head diverged: no best head this epoch.
            self.history.append(None)
            return
        # A diverged (NaN) head is never the best.
        index = int(
            np.nanargmax(values)
            if self._better is np.greater
            else np.nanargmin(values)
        )
        name = self.head_names[index]
        logs["best_head_index"] = index
        self.history.append(name)
        if self.best is not None and not self._better(values[index], self.best):
            return
        if self.verbose:
            previous = "" if self.best is None else f" (was {self.best:.4f})"
            print(
                f"\nEpoch {epoch + 1}: best head {name}, {self.monitor} "
                f"{values[index]:.4f}{previous}"
            )
        self.best_head, self.best, self.best_epoch = name, values[index], epoch
        if self.filepath is not None:
            path = self.filepath.format(epoch=epoch + 1, head=name, **logs)
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            extract_head(self.model, index).save(path)
