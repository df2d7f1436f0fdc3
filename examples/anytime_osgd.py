"""Orthogonalized SGD on an anytime network and on ABNet, on digits.

An anytime network answers at several depths: exits on one shared trunk,
the earliest exit cheapest. Trained jointly on the mean of the exits'
losses, the later exits pull the shared trunk their way and the early
exits pay. OSGD gives the exits a priority (earliest first, as in the
paper): each later exit moves the trunk only in directions orthogonal to
the gradients of the exits before it.

This trains the anytime network with and without OSGD over several seeds
and prints each exit's test accuracy (mean +- std) and a paired
comparison per exit; then an 8-head ABNet with and without
`OrthogonalGradients(order="rank")` (the best validation head first,
re-ranked every epoch). Runs offline on any backend:

    python examples/anytime_osgd.py                     # 3 seeds, 20 epochs
    KERAS_BACKEND=jax python examples/anytime_osgd.py --seeds 2 --epochs 5
"""

import argparse

import keras
import numpy as np

import keras_andhra as ka

L = keras.layers
CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def anytime_network(num_classes=10, widths=(16, 32, 64, 64)):
    """Exits after every stage of one trunk, collected as the heads."""
    inputs = keras.Input((8, 8, 1))
    x = inputs
    exits = []
    for depth, filters in enumerate(widths):
        strides = 2 if depth == 2 else 1
        x = L.Conv2D(filters, 3, strides=strides, padding="same")(x)
        x = L.BatchNormalization(momentum=0.9)(x)
        x = L.ReLU()(x)
        exit_features = L.GlobalAveragePooling2D()(x)
        exits.append(L.Dense(num_classes, name=f"exit_{depth}")(exit_features))
    names = [f"exit_{depth}" for depth in range(len(widths))]
    heads = ka.layers.HeadCollector(head_names=names)(exits)
    return ka.models.AndhraModel(inputs, heads, name="anytime")


def train(build, data, seed, epochs, callbacks=()):
    """Trains one model; returns its heads' test accuracies."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = build()
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=CE,
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=64,
        callbacks=list(callbacks),
        verbose=0,
    )
    logits = model.predict(x_test, verbose=0)
    accuracy = (logits.argmax(-1) == y_test[:, None]).mean(axis=0)
    return model.head_names, accuracy


def compare(title, build, data, seeds, epochs, make_callback):
    """Trains plain and OSGD runs per seed; prints and returns the table."""
    plain, osgd = [], []
    for seed in range(seeds):
        names, accuracy = train(build, data, seed, epochs)
        plain.append(accuracy)
        _, accuracy = train(build, data, seed, epochs, [make_callback()])
        osgd.append(accuracy)
    plain, osgd = np.array(plain), np.array(osgd)
    print(f"\n{title}: test accuracy over {seeds} seeds, {epochs} epochs")
    print(f"{'head':<10}{'plain':>18}{'OSGD':>18}{'diff':>9}{'paired p':>10}")
    rows = []
    for i, name in enumerate(names):
        p = float("nan")
        if seeds > 1:
            p = ka.evaluation.compare_runs(plain[:, i], osgd[:, i]).t_p_value
        print(
            f"{name:<10}"
            f"{plain[:, i].mean():>10.4f} +- {plain[:, i].std():.4f}"
            f"{osgd[:, i].mean():>10.4f} +- {osgd[:, i].std():.4f}"
            f"{osgd[:, i].mean() - plain[:, i].mean():>+9.4f}{p:>10.3f}"
        )
        rows.append((name, plain[:, i], osgd[:, i]))
    return rows


def main(seeds=3, epochs=20, abnet_width=8):
    (x_train, y_train), (x_test, y_test) = ka.data.load_digits()
    # The last 10% of the training set chooses the ABNet ranking.
    cut = int(0.9 * len(x_train))
    data = (
        (x_train[:cut], y_train[:cut]),
        (x_train[cut:], y_train[cut:]),
        (x_test, y_test),
    )
    anytime = compare(
        "Anytime network, exits earliest first",
        anytime_network,
        data,
        seeds,
        epochs,
        lambda: ka.callbacks.OrthogonalGradients(),
    )
    abnet = compare(
        'ABNet-2G-R0, 8 heads, OrthogonalGradients(order="rank")',
        lambda: ka.models.abnet(0, width=abnet_width, input_shape=(8, 8, 1)),
        data,
        seeds,
        epochs,
        lambda: ka.callbacks.OrthogonalGradients(order="rank"),
    )
    return anytime, abnet


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--abnet-width", type=int, default=8)
    args = parser.parse_args()
    main(args.seeds, args.epochs, args.abnet_width)
