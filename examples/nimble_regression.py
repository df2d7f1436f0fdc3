"""Nimble networks: grow from nothing, or start at the final size?

The paper's first experiment (Radhakrishnan et al., arXiv 2501.18012,
reference notebook LessIsMoreFig2): regress the Bessel function J0 on
[0.1, 0.2] (inputs and outputs rescaled to [-1, 1]) with one hidden layer
of up to 9 tanh units whose size N is a trainable weight, fed to the
units as an extra input, and pulled by the size loss 0.1 (N - 5)**2.
"Growing" networks start at N0 = 0, "grown" (static) ones at N0 = 5; both
train by full-batch gradient descent (learning rate 1e-3, 40,000 epochs,
32 training and 8 test points drawn from U(-1, 1), all weights U(-1, 1)).
The result is the mean final test loss of each over many trials, and
their ratio (the notebook's only saved number, at penalty 0.266 and
17,783 epochs: 0.01487 growing vs 0.02043 grown, ratio 0.73).

`--task classification` runs the paper's classification variant: the
class floor(1 + sin(2 pi x)) from 40 points, a sigmoid output with binary
cross-entropy, penalty 0.01, learning rate 0.08, 10,000 epochs.

All the trials of one kind train at once, as independent copies in one
`BranchBlock` (each copy reads its own trial's data column; the summed
loss gives each copy exactly its own gradient), stacked into batched
kernels. Runs offline on any backend (JAX is the fastest here):

    KERAS_BACKEND=jax python examples/nimble_regression.py --trials 200
    python examples/nimble_regression.py --trials 4 --epochs 2000  # quick
"""

import argparse
import math
import time

import keras
import numpy as np
import scipy.special

import keras_andhra as ka

L = keras.layers

TASKS = {
    "regression": dict(
        epochs=40_000, learning_rate=1e-3, penalty=0.1, train=32, test=8
    ),
    "classification": dict(
        epochs=10_000, learning_rate=0.08, penalty=0.01, train=40, test=10
    ),
}


def make_data(task, rng, trials, num_train, num_test):
    """Per-trial data: inputs `(n, trials)`, targets `(n, trials, 1)`."""
    x = rng.uniform(-1.0, 1.0, size=(num_train + num_test, trials))
    if task == "regression":
        low, high = scipy.special.j0(0.2), scipy.special.j0(0.1)
        y = scipy.special.j0(0.15 + 0.05 * x)
        y = 2.0 * (y - low) / (high - low) - 1.0
    else:
        y = np.floor(1.0 + np.sin(2.0 * math.pi * x))
    x, y = x.astype("float32"), y[..., None].astype("float32")
    return (x[:num_train], y[:num_train]), (x[num_train:], y[num_train:])


def trials_model(task, trials, initial_size, args):
    """`trials` independent size-gated networks, one per head."""
    uniform = keras.initializers.RandomUniform(-1.0, 1.0)
    inputs = keras.Input((trials,))
    columns = keras.ops.split(inputs, trials, axis=-1)
    branches = ka.layers.BranchBlock(
        lambda: keras.Sequential(
            [
                ka.layers.SizeGatedDense(
                    args.capacity,
                    activation="tanh",
                    size=initial_size,
                    target=args.target,
                    penalty=args.penalty,
                    feed_size=True,
                    kernel_initializer=uniform,
                    bias_initializer=uniform,
                    name="hidden",
                ),
                L.Dense(
                    1,
                    activation="sigmoid" if task == "classification" else None,
                    kernel_initializer=uniform,
                    bias_initializer=uniform,
                ),
            ]
        ),
        execution="stacked",
        name="trials",
    )(columns)
    heads = ka.layers.HeadCollector()(branches)
    model = ka.models.AndhraModel(inputs, heads, name=f"n0_{initial_size:g}")
    model.compile(
        optimizer=keras.optimizers.SGD(args.learning_rate),
        loss="mse" if task == "regression" else "binary_crossentropy",
        head_reduction="sum",
        head_labels="per_head",
        steps_per_execution=1 if keras.config.backend() == "torch" else 500,
    )
    return model


class FullBatch(keras.utils.PyDataset):
    """The whole training set as every batch: full-batch gradient descent."""

    def __init__(self, x, y, steps):
        super().__init__()
        self.x, self.y, self.steps = x, y, steps

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        return self.x, self.y


def final_test_loss(task, model, x, y):
    """Per trial: the test loss (data term only), and the accuracy."""
    predicted = np.asarray(model.predict(x, batch_size=len(x), verbose=0))
    if task == "regression":
        return ((predicted - y) ** 2).mean(axis=(0, 2)), None
    p = np.clip(predicted, 1e-7, 1 - 1e-7)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=(0, 2))
    accuracy = ((predicted > 0.5) == (y > 0.5)).mean(axis=(0, 2))
    return loss, accuracy


def run(task, initial_size, data, args):
    (x_train, y_train), (x_test, y_test) = data
    model = trials_model(task, x_train.shape[1], initial_size, args)
    start = time.perf_counter()
    model.fit(FullBatch(x_train, y_train, args.epochs), epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    sizes = np.array(
        [c.layers[0].active_size() for c in model.get_layer("trials").copies]
    )
    loss, accuracy = final_test_loss(task, model, x_test, y_test)
    return loss, accuracy, sizes, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="regression")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--penalty", type=float)
    parser.add_argument("--target", type=float, default=5.0)
    parser.add_argument("--capacity", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for key, value in TASKS[args.task].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    rng = np.random.default_rng(args.seed)
    keras.utils.set_random_seed(args.seed)
    data = make_data(args.task, rng, args.trials, args.train, args.test)
    print(
        f"{args.task} on {keras.config.backend()}: {args.trials} trials, "
        f"{args.epochs} epochs of full-batch GD, learning rate "
        f"{args.learning_rate}, size loss {args.penalty} (N - "
        f"{args.target:g})**2, up to {args.capacity} units"
    )
    results = {}
    for name, initial in (("growing", 0.0), ("grown", args.target)):
        loss, accuracy, sizes, seconds = run(args.task, initial, data, args)
        results[name] = loss
        line = (
            f"{name:<8} (N0 = {initial:g}): mean final test loss "
            f"{loss.mean():.5f} (median {np.median(loss):.5f}), final size "
            f"{sizes.mean():.3f} +- {sizes.std():.3f}"
        )
        if accuracy is not None:
            line += f", test accuracy {accuracy.mean():.3f}"
        print(line + f"  [{seconds:.0f} s]")
    ratio = results["growing"].mean() / results["grown"].mean()
    wins = (results["growing"] < results["grown"]).mean()
    print(
        f"ratio growing / grown: {ratio:.3f}; growing has the lower loss in "
        f"{wins:.0%} of the paired trials"
    )
    return results, ratio


if __name__ == "__main__":
    main()
