import dataclasses
import math

import keras

from keras_andhra.data import Augmentation
from keras_andhra.data import load_dataset
from keras_andhra.utils import arguments

_SCHEDULES = ("cosine_per_epoch", "constant")
#: The recipes, by name; what is not listed keeps the dataclass defaults.
_RECIPES = {
    "cifar": dict(epochs=200, batch_size=128, learning_rate=0.1),
    # Sized for the main job: under 5 minutes on 2 CPU cores.
    "mnist-5000": dict(epochs=6, batch_size=128, learning_rate=0.1, width=8),
    "digits": dict(
        epochs=15, batch_size=64, learning_rate=0.05, weight_decay=0.0, width=16
    ),
    "default": dict(epochs=30, batch_size=128, learning_rate=0.1),
}
#: Which recipe belongs to which dataset.
_RECIPE_OF = {
    "cifar10": "cifar",
    "cifar100": "cifar",
    "mnist-5000": "mnist-5000",
    "digits": "digits",
}


@keras.saving.register_keras_serializable(package="keras_andhra")
class EpochCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine annealing stepped once per epoch, as PyTorch's scheduler.

    The learning rate of epoch `e` (0-based) is
    `initial * (1 + cos(pi * e / epochs)) / 2`, constant within the epoch:
    PyTorch's `CosineAnnealingLR(T_max=epochs)` stepped after every
    epoch, the reference ABNet code's schedule. It reads the epoch from
    the optimizer's step counter, so it lives in the optimizer (saved with
    the model, restored by `BackupAndRestore`) and needs no callback.

    Args:
        initial_learning_rate: Float, the rate of the first epoch.
        epochs: Int, the length of the cosine (the run's epochs).
        steps_per_epoch: Int, optimizer steps per epoch.

    Example:

    ```python
    import keras
    import keras_andhra as ka

    schedule = ka.experiments.EpochCosineDecay(0.1, epochs=200,
                                               steps_per_epoch=352)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
    float(schedule(352 * 100))  # 0.05: half-way through
    ```
    """

    def __init__(self, initial_learning_rate, epochs, steps_per_epoch):
        arguments.check_positive_int("epochs", epochs)
        arguments.check_positive_int("steps_per_epoch", steps_per_epoch)
        self.initial_learning_rate = float(initial_learning_rate)
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch

    def __call__(self, step):
        epoch = keras.ops.floor_divide(
            keras.ops.cast(step, "float32"), float(self.steps_per_epoch)
        )
        epoch = keras.ops.minimum(epoch, float(self.epochs))
        cosine = keras.ops.cos(math.pi * epoch / self.epochs)
        return self.initial_learning_rate * 0.5 * (1.0 + cosine)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch,
        }


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a dataset is trained: data pipeline, optimizer, schedule, width.

    One object, shared by `keras-andhra train`, `keras-andhra reproduce`
    and the examples. `Recipe.for_dataset(name)` gives the recipe that
    belongs to the data; `replace(...)` overrides any field.

    The CIFAR recipe is the reference code's: SGD with learning rate 0.1
    and momentum 0.9 (no Nesterov), coupled L2 weight decay 5e-4 on every
    weight (batch-norm scales and biases included: PyTorch's
    `weight_decay`, added to the gradient before momentum; Keras's own
    `weight_decay` is decoupled, so it is written as an L2 penalty of
    `weight_decay / 2` on every variable), cosine annealing stepped per
    epoch over 200 epochs, batch 128, pad-4 crop + flip, the reference
    per-channel normalisation, width 64. A validation split of 5,000
    images is held out of the training set (the reference has none and
    picks checkpoints on the test set). The small offline sets keep
    recipes that train in minutes on a CPU.

    Attributes:
        name: Which recipe this is (`"cifar"`, `"mnist-5000"`, `"digits"`
            or `"default"`), for the printed summary.
        epochs: Int, training epochs.
        batch_size: Int.
        learning_rate: Float, the initial learning rate.
        momentum: Float, SGD momentum.
        weight_decay: Float, coupled L2 coefficient (0 for none).
        schedule: `"cosine_per_epoch"` or `"constant"`.
        width: Int, the models' stem width.
        validation_size: Held-out training examples (int, fraction or
            `"auto"`), as `load_dataset` takes it.
        augmentation: `"auto"`, `None` or an `Augmentation`.
        normalization: `"auto"`, `None` or `(mean, std)`.

    Example:

    ```python
    import keras_andhra as ka

    recipe = ka.experiments.Recipe.for_dataset("cifar10")
    print(recipe)  # SGD 0.1, momentum 0.9, coupled L2 5e-4, ...
    quick = recipe.replace(epochs=2, width=8)
    ```
    """

    name: str
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine_per_epoch"
    width: int = 64
    validation_size: object = "auto"
    augmentation: object = "auto"
    normalization: object = "auto"

    def __post_init__(self):
        for field in ("epochs", "batch_size", "width"):
            arguments.check_positive_int(field, getattr(self, field))
        for field in ("learning_rate", "momentum", "weight_decay"):
            arguments.check_non_negative(field, getattr(self, field))
        if self.schedule not in _SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {_SCHEDULES}. Received: "
                f"schedule={self.schedule!r}"
            )

    @classmethod
    def for_dataset(cls, name):
        """The recipe that belongs to a dataset (name or folder).

        CIFAR-10/100: the paper's. `mnist-5000` and `digits`: small
        recipes for a CPU. Anything else: the paper's optimizer and
        schedule over 30 epochs, without augmentation.
        """
        recipe = _RECIPE_OF.get(name, "default")
        return cls(name=recipe, **_RECIPES[recipe])

    def replace(self, **changes):
        """A copy with some fields changed (`None` values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes)

    def load_data(self, source, seed=0, data_dir=None, **kwargs):
        """`load_dataset(source, ...)` with this recipe's data settings."""
        return load_dataset(
            source,
            batch_size=self.batch_size,
            validation_size=self.validation_size,
            augmentation=self.augmentation,
            normalization=self.normalization,
            seed=seed,
            data_dir=data_dir,
            **kwargs,
        )

    def compile(self, model, steps_per_epoch, metrics=("accuracy",)):
        """Adds the coupled weight decay and compiles with the optimizer.

        Args:
            model: A Keras model (an `AndhraModel` or a baseline) giving
                logits.
            steps_per_epoch: Batches per epoch, for the per-epoch schedule.
            metrics: Compiled metrics.

        Returns:
            The model.
        """
        add_coupled_weight_decay(model, self.weight_decay)
        rate = self.learning_rate
        if self.schedule == "cosine_per_epoch":
            rate = EpochCosineDecay(rate, self.epochs, int(steps_per_epoch))
        model.compile(
            optimizer=keras.optimizers.SGD(rate, momentum=self.momentum),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=list(metrics),
        )
        return model

    def fit(self, model, data, callbacks=(), verbose="auto"):
        """Compiles `model` with the recipe and fits it on `data`.

        Trains on `data.train` for the recipe's epochs, validating on
        `data.validation`, with `data.epoch_sync()` so that the pipeline
        shuffles and augments by (seed, epoch), and Keras's own shuffling
        off (the pipeline's order is the data's).

        Args:
            model: A Keras model giving logits.
            data: An `ImageData` (from `load_data`).
            callbacks: More Keras callbacks.
            verbose: Passed to `fit`.

        Returns:
            The `History` of `fit`.
        """
        self.compile(model, int(data.train.cardinality()))
        return model.fit(
            data.train,
            validation_data=data.validation,
            epochs=self.epochs,
            callbacks=[data.epoch_sync(), *callbacks],
            shuffle=False,
            verbose=verbose,
        )

    def to_dict(self):
        config = dataclasses.asdict(self)
        if isinstance(self.augmentation, Augmentation):
            config["augmentation"] = {
                "augmentation": self.augmentation.to_dict()
            }
        if isinstance(self.normalization, tuple):
            config["normalization"] = [list(v) for v in self.normalization]
        return config

    @classmethod
    def from_dict(cls, config):
        config = dict(config)
        augmentation = config.get("augmentation")
        if isinstance(augmentation, dict):
            config["augmentation"] = Augmentation(
                **augmentation["augmentation"]
            )
        if isinstance(config.get("normalization"), list):
            config["normalization"] = tuple(
                tuple(v) for v in config["normalization"]
            )
        return cls(**config)

    def __str__(self):
        decay = (
            f"coupled L2 {self.weight_decay:g} on every weight"
            if self.weight_decay
            else "no weight decay"
        )
        schedule = (
            f"cosine per epoch over {self.epochs} epochs"
            if self.schedule == "cosine_per_epoch"
            else f"constant over {self.epochs} epochs"
        )
        return (
            f"recipe {self.name}: SGD {self.learning_rate:g}, momentum "
            f"{self.momentum:g}, {decay}, {schedule}, batch "
            f"{self.batch_size}, width {self.width}"
        )


def add_coupled_weight_decay(model, decay):
    """Puts PyTorch-style coupled weight decay on every trainable weight.

    `d/dw (decay / 2 * w**2) = decay * w`, added to the gradient before
    the optimizer (and its momentum) sees it.
    """
    if not decay:
        return model
    penalty = keras.regularizers.L2(decay / 2.0)
    for weight in model.trainable_weights:
        weight.regularizer = penalty
    return model
