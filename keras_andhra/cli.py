"""The command-line main job: `keras-andhra` / `python -m keras_andhra`.

    keras-andhra                  train ABNet and the baseline on digits
    keras-andhra train --dataset cifar10 --data-dir DIR --epochs 200
    keras-andhra build            build and summarise, no training
    keras-andhra rank MODEL       rank the heads of a saved model

`--backend` must take effect before Keras is imported, and importing
keras_andhra imports Keras: when Keras already runs on another backend,
the command starts itself again with KERAS_BACKEND set.
"""

import argparse
import json
import math
import os
import sys
import time


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-andhra",
        description=(
            "Train an ANDHRA Bandersnatch network (ABNet) and its baseline "
            "the same way, then rank the heads, ensemble them and test them "
            "against the baseline. Without arguments: digits, offline, "
            "about a minute."
        ),
    )
    sub = parser.add_subparsers(dest="command")
    # The options are accepted before and after the command. A subcommand
    # only sets what it was given (SUPPRESS), so it does not overwrite an
    # option given before it with its own default.
    commands = {
        "train": "train and compare (default)",
        "build": "build and summarise only",
        "rank": "rank the heads of a saved model",
    }
    train, build, rank = (
        sub.add_parser(name, help=text, argument_default=argparse.SUPPRESS)
        for name, text in commands.items()
    )
    rank.add_argument("model", help="a saved ANDHRA model (.keras)")
    rank.add_argument(
        "--baseline", default=None, help="a saved baseline model (.keras)"
    )
    rank.add_argument(
        "--plot",
        default=None,
        help="where to write the plot (default: next to MODEL)",
    )
    for p in (parser, train, build, rank):
        p.add_argument(
            "--backend",
            choices=["tensorflow", "jax", "torch"],
            help="Keras backend (default: $KERAS_BACKEND or tensorflow)",
        )
        p.add_argument(
            "--dataset",
            choices=["digits", "cifar10", "cifar100"],
        )
        p.add_argument("--data-dir", help="tensorflow-datasets data dir")
    for p in (parser, train, build):
        p.add_argument("--residual-units", type=int)
        p.add_argument("--width", type=int)
        p.add_argument("--num-branches", type=int)
        p.add_argument("--num-levels", type=int)
        p.add_argument("--activation")
    for p in (parser, train):
        p.add_argument("--epochs", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument(
            "--output",
            help=(
                "directory for the models, results.json and the plot "
                "(default: runs/<dataset>-<backend>)"
            ),
        )
    parser.set_defaults(
        dataset="digits",
        residual_units=0,
        width=16,
        num_branches=2,
        num_levels=3,
        activation="relu",
        epochs=15,
        batch_size=64,
    )
    return parser


def main(argv=None):
    """The `keras-andhra` command: runs it and returns the exit status 0.

    Errors exit through `SystemExit` with a message. The console script
    passes the return value to `sys.exit`, so it must not be the result;
    `run` returns that. With `--backend` naming another backend than the
    one Keras was imported on, the command runs again in a new process.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    backend = _parser().parse_args(argv).backend
    if backend and _imported_backend() not in (None, backend):
        _restart(argv, backend)
    run(argv)
    return 0


def _imported_backend():
    keras = sys.modules.get("keras")
    return None if keras is None else keras.backend.backend()


def _restart(argv, backend):
    """Runs `python -m keras_andhra ARGV` on `backend`; does not return."""
    import subprocess

    command = [sys.executable, "-m", "keras_andhra", *argv]
    env = dict(os.environ, KERAS_BACKEND=backend)
    sys.stdout.flush()
    if os.name == "posix":
        os.execve(sys.executable, command, env)
    sys.exit(subprocess.run(command, env=env, check=False).returncode)


def run(argv=None):
    """Runs a `keras-andhra` command and returns its result.

    `train` and `rank` return the `HeadReport`; `build` returns `None`.
    """
    args = _parser().parse_args(argv)
    if args.backend:
        if _imported_backend() not in (None, args.backend):
            sys.exit(
                "Keras is already imported on another backend; run "
                f"`KERAS_BACKEND={args.backend} keras-andhra ...` instead."
            )
        os.environ["KERAS_BACKEND"] = args.backend
    data = _load(args)
    if args.command == "rank":
        return rank(args, data)
    try:
        model, baseline = _build(args, data[0][0].shape[1:], data[2])
    except (TypeError, ValueError) as error:
        sys.exit(f"keras-andhra: {error}")
    _describe(model, baseline, args, data)
    if args.command != "build":
        return train(model, baseline, args, data)


def _load(args):
    import numpy as np

    import keras_andhra as ka

    if args.dataset == "digits":
        (x_train, y_train), (x_test, y_test) = ka.data.load_digits()
    else:
        try:
            (x_train, y_train), (x_test, y_test) = ka.data.load_cifar(
                args.dataset, data_dir=args.data_dir
            )
        except (ImportError, RuntimeError) as error:
            sys.exit(f"keras-andhra: {error}")
        x_train = x_train.astype("float32") / 255.0
        x_test = x_test.astype("float32") / 255.0
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    # Heads are selected on a validation split, never on the test data.
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x_train))
    cut = len(x_train) // 10
    valid, fit = order[:cut], order[cut:]
    return (
        (x_train[fit], y_train[fit]),
        (x_train[valid], y_train[valid], x_test, y_test),
        num_classes,
    )


def _build(args, shape, num_classes):
    import keras_andhra as ka

    model = ka.models.abnet(
        args.residual_units,
        num_classes=num_classes,
        num_branches=args.num_branches,
        num_levels=args.num_levels,
        width=args.width,
        input_shape=shape,
        activation=args.activation,
    )
    baseline = ka.models.baseline_resnet(
        args.residual_units,
        num_classes=num_classes,
        width=args.width,
        input_shape=shape,
        activation=args.activation,
    )
    return model, baseline


def _describe(model, baseline, args, data):
    import keras

    import keras_andhra as ka
    from keras_andhra import backend

    (x_fit, _), (x_valid, _, x_test, _), _ = data
    blocks = [
        layer
        for layer in model.layers
        if isinstance(layer, ka.layers.BranchBlock)
    ]
    print(
        f"backend {keras.backend.backend()} on {backend.device_kind()}; "
        f"{args.dataset}: {len(x_fit)} train / {len(x_valid)} validation / "
        f"{len(x_test)} test images of shape {x_fit.shape[1:]}"
    )
    print(f"{model.name}: {model.num_heads} heads, width {args.width}")
    print(f"  heads: {', '.join(model.head_names)}")
    print(f"  trainable parameters: {_count(model):,} in all")
    print(
        f"  one head's path: {_count(baseline):,} = the baseline "
        f"{baseline.name}"
    )
    print(
        "  branch execution: "
        + ", ".join(f"{b.name} {b.resolved_execution}" for b in blocks)
    )


def train(model, baseline, args, data):
    import keras

    import keras_andhra as ka

    (x_fit, y_fit), (x_valid, y_valid, x_test, y_test), _ = data
    results = {"dataset": args.dataset, "backend": keras.backend.backend()}
    steps = max(1, math.ceil(len(x_fit) / args.batch_size)) * args.epochs
    for name, net in (("abnet", model), ("baseline", baseline)):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = keras.optimizers.SGD(
            keras.optimizers.schedules.CosineDecay(0.05, steps),
            momentum=0.9,
        )
        net.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        print(f"\nTraining {net.name} for {args.epochs} epochs")
        start = time.perf_counter()
        net.fit(
            x_fit,
            y_fit,
            validation_data=(x_valid, y_valid),
            epochs=args.epochs,
            batch_size=args.batch_size,
            verbose="auto",
        )
        results[f"{name}_seconds"] = time.perf_counter() - start

    report = ka.evaluation.rank_heads(
        model,
        x_test,
        y_test,
        validation_data=(x_valid, y_valid),
        baseline=baseline,
        verbose=0,
    )
    print()
    print(report)
    output = args.output or os.path.join(
        "runs", f"{args.dataset}-{keras.backend.backend()}"
    )
    os.makedirs(output, exist_ok=True)
    model.save(os.path.join(output, "abnet.keras"))
    baseline.save(os.path.join(output, "baseline.keras"))
    ka.evaluation.extract_head(model, report.best_head).save(
        os.path.join(output, "best_head.keras")
    )
    results.update(report.to_dict())
    with open(os.path.join(output, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    _plot(report, os.path.join(output, "head_report.png"))
    print(
        f"\nSaved abnet.keras, baseline.keras, best_head.keras (a plain "
        f"Keras model), results.json and head_report.png to {output}"
    )
    return report


def rank(args, data):
    """`keras-andhra rank MODEL`: ranks the heads of a saved model."""
    import keras

    import keras_andhra as ka

    _, (x_valid, y_valid, x_test, y_test), _ = data
    try:
        model = keras.saving.load_model(args.model)
        baseline = args.baseline and keras.saving.load_model(args.baseline)
        report = ka.evaluation.rank_heads(
            model,
            x_test,
            y_test,
            validation_data=(x_valid, y_valid),
            baseline=baseline or None,
            verbose=0,
        )
    except (OSError, TypeError, ValueError) as error:
        message = str(error)
        if len(message) > 500:
            message = message[:500] + " ..."
        sys.exit(f"keras-andhra rank: {message}")
    print(report)
    stem = os.path.splitext(args.model)[0]
    _plot(report, args.plot or f"{stem}_report.png")
    return report


def _plot(report, path):
    try:
        report.plot(path)
    except ImportError as error:
        print(f"No plot: {error}")
    else:
        print(f"Plot written to {path}")


def _count(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)
