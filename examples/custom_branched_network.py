"""Branch your own Keras network with the three ANDHRA layers.

Builds a small two-level branched CNN (4 heads) for scikit-learn's bundled
digits, trains it with plain Keras on per-head labels and prints each
head's test accuracy. Runs offline on any backend:

    KERAS_BACKEND=jax python examples/custom_branched_network.py --epochs 20
"""

import argparse

import keras
import numpy as np

import keras_andhra as ka

L = keras.layers


def build(num_classes=10):
    def stage(filters):
        return lambda: keras.Sequential(
            [
                L.Conv2D(filters, 3, padding="same", use_bias=False),
                L.BatchNormalization(momentum=0.9),
                L.ReLU(),
                L.MaxPooling2D(),
            ]
        )

    inputs = keras.Input((8, 8, 1))
    x = L.Conv2D(16, 3, padding="same")(inputs)
    branches = ka.layers.AndhraSplit(num_branches=2)(x)
    branches = ka.layers.BranchBlock(stage(32), name="stage2")(branches)
    branches = ka.layers.AndhraSplit(num_branches=2)(branches)
    branches = ka.layers.BranchBlock(
        lambda: keras.Sequential(
            [L.GlobalAveragePooling2D(), L.Dense(num_classes)]
        ),
        name="classifier",
    )(branches)
    outputs = ka.layers.HeadCollector(name="heads")(branches)
    return keras.Model(inputs, outputs)


def main(epochs=20):
    (x_train, y_train), (x_test, y_test) = ka.data.load_digits()
    model = build()
    num_heads = model.get_layer("heads").num_heads
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    y_heads = np.repeat(y_train[:, None], num_heads, axis=1)
    model.fit(x_train, y_heads, epochs=epochs, batch_size=32, verbose=0)
    logits = model.predict(x_test, verbose=0)
    accuracy = (logits.argmax(-1) == y_test[:, None]).mean(axis=0)
    for name, value in zip(model.get_layer("heads").head_names, accuracy):
        print(f"{name}: {value:.3f}")
    return dict(zip(model.get_layer("heads").head_names, accuracy))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    main(parser.parse_args().epochs)
