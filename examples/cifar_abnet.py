"""The paper's CIFAR recipe for ABNet-2G-R{R} and its baseline.

The recipe is `keras_andhra.experiments.Recipe.for_dataset("cifar10")`,
the one `keras-andhra train` and `keras-andhra reproduce` use: SGD 0.1,
momentum 0.9, coupled L2 5e-4 on every weight, cosine per epoch over 200
epochs, batch 128, pad-4 crop + flip and the reference normalisation on
the tf.data graph, 5,000 validation images held out of the training set.
The kept epoch and the best head are chosen on validation data; the test
set is read once, at the end.

CIFAR needs tensorflow-datasets and the data (prepared under
`--data-dir`, or a network). For a CPU smoke run:

    python examples/cifar_abnet.py --dataset cifar10 --epochs 1 --width 8
    python examples/cifar_abnet.py --synthetic --epochs 1 --subset 256

Five seeds with the paper's statistics:
`keras-andhra reproduce --dataset cifar10 --models baseline,abnet-r0`.
"""

import argparse

import numpy as np

import keras_andhra as ka


def load(args, recipe):
    """The data: CIFAR through tfds, or random CIFAR-shaped images."""
    if not args.synthetic:
        return recipe.load_data(args.dataset, data_dir=args.data_dir)
    rng = np.random.default_rng(0)
    n = args.subset or 256
    classes = 100 if args.dataset == "cifar100" else 10
    images = rng.integers(0, 256, size=(2 * n, 32, 32, 3), dtype="uint8")
    labels = np.arange(2 * n) % classes
    return recipe.replace(
        normalization=args.dataset,
        augmentation=ka.data.Augmentation(padding=4, flip=True),
        validation_size=0.1,
    ).load_data(((images[:n], labels[:n]), (images[n:], labels[n:])))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", choices=["cifar10", "cifar100"], default="cifar10"
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--residual-units", type=int, default=0)
    parser.add_argument(
        "--num-levels", type=int, default=3, help="split levels (2**L heads)"
    )
    parser.add_argument("--width", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--subset", type=int, help="synthetic images")
    parser.add_argument(
        "--synthetic", action="store_true", help="random CIFAR-shaped data"
    )
    args = parser.parse_args(argv)
    recipe = ka.experiments.Recipe.for_dataset(args.dataset).replace(
        width=args.width, epochs=args.epochs, batch_size=args.batch_size
    )
    print(recipe)
    data = load(args, recipe)
    print(data)
    models = {}
    for family in ("abnet", "baseline"):
        name = f"{family}-r{args.residual_units}"
        model = ka.experiments.build_model(
            name,
            data.num_classes,
            data.image_shape,
            width=recipe.width,
            num_levels=args.num_levels,
        )
        print(f"\n{model.name}: {model.count_params():,} parameters")
        recipe.fit(model, data)
        models[family] = model
    report = ka.evaluation.rank_heads(
        models["abnet"],
        data.test,
        validation_data=data.validation,
        baseline=models["baseline"],
        verbose=0,
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
