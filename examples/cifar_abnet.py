"""The paper's CIFAR recipe for ABNet-2G-R{R} and its baseline.

The reference code's training, reproduced with Keras:

* SGD, learning rate 0.1, momentum 0.9 (no Nesterov), batch 128;
* coupled L2 weight decay 5e-4 on every weight, batch-norm scales and
  biases included (PyTorch's `weight_decay`, added to the gradient before
  momentum). Keras's `weight_decay` is decoupled, so it is written as an
  L2 regulariser of 2.5e-4 on every variable: d/dw (2.5e-4 w^2) = 5e-4 w;
* cosine annealing of the learning rate, stepped once per epoch, over the
  run's epochs (200 in the paper);
* zero-pad 4 + random 32x32 crop + horizontal flip; the reference
  per-channel normalisation;
* every ABNet head trained on the mean of the heads' cross-entropies.

CIFAR needs tensorflow-datasets and the data (prepared under `--data-dir`,
or a network). For a CPU smoke run:

    python examples/cifar_abnet.py --dataset cifar10 --epochs 1 --subset 512
    python examples/cifar_abnet.py --synthetic --epochs 1 --subset 256
"""

import argparse
import math

import keras
import numpy as np

import keras_andhra as ka

MEAN = {
    "cifar10": (0.4914, 0.4822, 0.4465),
    "cifar100": (0.5071, 0.4867, 0.4408),
}
STD = {
    "cifar10": (0.2023, 0.1994, 0.2010),
    "cifar100": (0.2675, 0.2565, 0.2761),
}
COUPLED_L2 = 5e-4


def add_coupled_weight_decay(model, decay=COUPLED_L2):
    """Puts PyTorch-style coupled weight decay on every trainable weight."""
    penalty = keras.regularizers.L2(decay / 2.0)
    for weight in model.trainable_weights:
        weight.regularizer = penalty
    return model


def cosine_per_epoch(learning_rate, epochs):
    """PyTorch's CosineAnnealingLR(T_max=epochs), stepped per epoch."""

    def schedule(epoch, _):
        return learning_rate * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))

    return keras.callbacks.LearningRateScheduler(schedule)


def augmentation():
    return keras.Sequential(
        [
            keras.layers.ZeroPadding2D(4),
            keras.layers.RandomCrop(32, 32),
            keras.layers.RandomFlip("horizontal"),
        ],
        name="augment",
    )


def load(args):
    if args.synthetic:
        rng = np.random.default_rng(0)
        n = args.subset or 256
        classes = 100 if args.dataset == "cifar100" else 10
        images = rng.integers(0, 256, size=(2 * n, 32, 32, 3), dtype="uint8")
        labels = rng.integers(0, classes, size=(2 * n,))
        train = (images[:n], labels[:n])
        test = (images[n:], labels[n:])
    else:
        train, test = ka.data.load_cifar(args.dataset, data_dir=args.data_dir)
    if args.subset:
        train = tuple(a[: args.subset] for a in train)
        test = tuple(a[: args.subset] for a in test)
    mean = np.array(MEAN[args.dataset], "float32")
    std = np.array(STD[args.dataset], "float32")

    def normalise(images):
        return ((images.astype("float32") / 255.0) - mean) / std

    return (normalise(train[0]), train[1]), (normalise(test[0]), test[1])


def train(model, data, args):
    (x_train, y_train), (x_test, y_test) = data
    add_coupled_weight_decay(model)
    model.compile(
        optimizer=keras.optimizers.SGD(args.learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    augment = augmentation()
    dataset = _batches(x_train, y_train, args.batch_size, augment)
    model.fit(
        dataset,
        epochs=args.epochs,
        validation_data=(x_test, y_test),
        callbacks=[cosine_per_epoch(args.learning_rate, args.epochs)],
        verbose="auto",
    )
    return model.evaluate(x_test, y_test, verbose=0, return_dict=True)


def _batches(x, y, batch_size, augment):
    """A reshuffling, augmenting batch generator (any backend)."""

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = np.random.permutation(len(x))

        def __len__(self):
            return math.ceil(len(x) / batch_size)

        def on_epoch_end(self):
            self.order = np.random.permutation(len(x))

        def __getitem__(self, index):
            rows = self.order[index * batch_size : (index + 1) * batch_size]
            images = keras.ops.convert_to_numpy(augment(x[rows], training=True))
            return images, y[rows]

    return Batches()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", choices=["cifar10", "cifar100"], default="cifar10"
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--residual-units", type=int, default=0)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--subset", type=int, help="first N images only")
    parser.add_argument(
        "--synthetic", action="store_true", help="random CIFAR-shaped data"
    )
    args = parser.parse_args(argv)
    data = load(args)
    classes = 100 if args.dataset == "cifar100" else 10
    results = {}
    for name, build in (
        ("abnet", ka.models.abnet),
        ("baseline", ka.models.baseline_resnet),
    ):
        model = build(
            args.residual_units, num_classes=classes, width=args.width
        )
        print(f"\n{model.name}: {model.count_params():,} parameters")
        results[name] = train(model, data, args)
    abnet, baseline = results["abnet"], results["baseline"]
    print(
        f"\nbest head {abnet['best_accuracy']:.4f} (picked on this test set), "
        f"ensemble {abnet['ensemble_accuracy']:.4f}, "
        f"baseline {baseline['accuracy']:.4f}"
    )
    return results


if __name__ == "__main__":
    main()
