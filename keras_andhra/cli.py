"""The command-line main job: `keras-andhra` / `python -m keras_andhra`.

    keras-andhra                  train ABNet-R0 and its baseline on
                                  mnist-5000 (offline), rank the heads
    keras-andhra train --dataset cifar10 --model abnet-r1 --data-dir DIR
    keras-andhra reproduce --dataset mnist-5000 --models baseline,abnet-r0
                                  --seeds 3
    keras-andhra build            build and summarise, no training
    keras-andhra rank MODEL       rank the heads of a saved model

Every command trains with the recipe that belongs to the data
(`keras_andhra.experiments.Recipe.for_dataset`), printed at the start;
the flags override it. `--backend` must take effect before Keras is
imported, and importing keras_andhra imports Keras: when Keras already
runs on another backend, the command starts itself again with
KERAS_BACKEND set.
"""

import argparse
import json
import math
import os
import sys

_COMMANDS = {
    "train": "train and compare (default)",
    "build": "build and summarise only",
    "rank": "rank the heads of a saved model",
    "reproduce": "seeds x models, with the paper's statistics",
}
_DEFAULTS = dict(
    dataset="mnist-5000",
    model="abnet-r0",
    models="baseline,abnet-r0",
    seeds="0,1,2,3,4",
    seed=0,
    num_branches=2,
    num_levels=3,
    activation="relu",
    select_on="validation",
)


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-andhra",
        description=(
            "Train an ANDHRA Bandersnatch network (ABNet) and its baseline "
            "with the recipe of the data, then rank the heads, ensemble them "
            "and test them against the baseline. Without arguments: "
            "mnist-5000, offline, a few minutes on a CPU."
        ),
    )
    sub = parser.add_subparsers(dest="command")
    # The options are accepted before and after the command. A subcommand
    # only sets what it was given (SUPPRESS), so it does not overwrite an
    # option given before it with its own default.
    commands = {
        name: sub.add_parser(
            name, help=text, argument_default=argparse.SUPPRESS
        )
        for name, text in _COMMANDS.items()
    }
    _add_rank_options(commands["rank"])
    _add_data_options([parser, *commands.values()])
    _add_model_options([parser, commands["train"], commands["build"]])
    _add_recipe_options(
        [parser, commands["train"], commands["build"], commands["reproduce"]]
    )
    _add_run_options([parser, commands["train"], commands["reproduce"]])
    _add_reproduce_options([parser, commands["reproduce"]])
    parser.set_defaults(**_DEFAULTS)
    return parser


def _add_rank_options(rank):
    rank.add_argument("saved_model", help="a saved ANDHRA model (.keras)")
    rank.add_argument(
        "--baseline", default=None, help="a saved baseline model (.keras)"
    )
    rank.add_argument(
        "--plot",
        default=None,
        help="where to write the plot (default: next to MODEL)",
    )


def _add_data_options(parsers):
    for p in parsers:
        p.add_argument(
            "--backend",
            choices=["tensorflow", "jax", "torch"],
            help="Keras backend (default: $KERAS_BACKEND or tensorflow)",
        )
        p.add_argument(
            "--dataset",
            help=(
                "mnist-5000 (default, offline), digits (offline), cifar10, "
                "cifar100, any tensorflow-datasets image set, or a folder "
                "of images with one subfolder per class"
            ),
        )
        p.add_argument("--data-dir", help="tensorflow-datasets data dir")


def _add_model_options(parsers):
    for p in parsers:
        p.add_argument(
            "--model",
            help="abnet-r0 (default) ... abnet-r3, or baseline[-rR]",
        )
        p.add_argument("--num-branches", type=int)
        p.add_argument("--num-levels", type=int)
        p.add_argument("--activation")


def _add_recipe_options(parsers):
    for p in parsers:
        p.add_argument("--width", type=int, help="stem width of the models")
        p.add_argument("--epochs", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--learning-rate", type=float)
        p.add_argument(
            "--weight-decay", type=float, help="coupled L2 coefficient"
        )


def _add_run_options(parsers):
    for p in parsers:
        p.add_argument(
            "--output",
            help=(
                "directory of the results (default: runs/<dataset>-<backend>"
                " for train, runs/reproduce-<dataset> for reproduce)"
            ),
        )
        p.add_argument(
            "--seed", type=int, help="seed of a train run (default 0)"
        )


def _add_reproduce_options(parsers):
    for p in parsers:
        p.add_argument("--models", help="comma-separated model names")
        p.add_argument(
            "--seeds", help="comma-separated seeds, or a count: 3 = 0,1,2"
        )
        p.add_argument(
            "--select-on",
            choices=["validation", "test"],
            help=(
                "which split picks the kept epoch and head: validation "
                "(default); test reproduces the reference code's biased "
                "selection"
            ),
        )


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

    `train` and `rank` return the `HeadReport` (`train` of a baseline its
    test scores), `reproduce` the `Reproduction`, `build` `None`.
    """
    args = _parser().parse_args(argv)
    if args.backend and _imported_backend() not in (None, args.backend):
        sys.exit(
            "Keras is already imported on another backend; run "
            f"`KERAS_BACKEND={args.backend} keras-andhra ...` instead."
        )
    command = args.command or "train"
    try:
        recipe = _recipe(args)
        if command == "reproduce":
            return _reproduce(args, recipe)
        data = _load(args, recipe)
        if command == "rank":
            return rank(args, data)
        models = _build(args, recipe, data)
        _describe(models, args, recipe, data)
        if command == "train":
            return train(models, args, recipe, data)
    except (ImportError, RuntimeError, TypeError, ValueError) as error:
        message = str(error)
        if len(message) > 600:
            message = message[:600] + " ..."
        sys.exit(f"keras-andhra {command}: {message}")
    return None


def _recipe(args):
    from keras_andhra.experiments import Recipe

    return Recipe.for_dataset(args.dataset).replace(
        width=getattr(args, "width", None),
        epochs=getattr(args, "epochs", None),
        batch_size=getattr(args, "batch_size", None),
        learning_rate=getattr(args, "learning_rate", None),
        weight_decay=getattr(args, "weight_decay", None),
    )


def _load(args, recipe):
    return recipe.load_data(
        args.dataset, seed=args.seed, data_dir=args.data_dir
    )


def _build(args, recipe, data):
    """`{"abnet": model, "baseline": model}`, or the baseline alone."""
    from keras_andhra.experiments import build_model
    from keras_andhra.experiments import model_names

    options = dict(
        num_classes=data.num_classes,
        input_shape=data.image_shape,
        width=recipe.width,
        activation=args.activation,
    )
    family, _ = model_names.parse(args.model)
    models = {}
    if family == "abnet":
        models["abnet"] = build_model(
            args.model,
            num_branches=args.num_branches,
            num_levels=args.num_levels,
            **options,
        )
    models["baseline"] = build_model(
        model_names.baseline_of(args.model), **options
    )
    return models


def _describe(models, args, recipe, data):
    import keras

    import keras_andhra as ka
    from keras_andhra import backend

    print(f"backend {keras.backend.backend()} on {backend.device_kind()}")
    print(data)
    print(recipe)
    baseline = models["baseline"]
    model = models.get("abnet")
    if model is None:
        print(f"{baseline.name}: {_count(baseline):,} trainable parameters")
        return
    blocks = [
        layer
        for layer in model.layers
        if isinstance(layer, ka.layers.BranchBlock)
    ]
    print(f"{model.name}: {model.num_heads} heads, width {recipe.width}")
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


def train(models, args, recipe, data):
    """`keras-andhra train`: fits the models, ranks the heads, saves all."""
    import time

    import keras

    import keras_andhra as ka

    results = {"dataset": data.name, "backend": keras.backend.backend()}
    results["recipe"] = recipe.to_dict()
    steps = int(data.train.cardinality())
    for name, net in models.items():
        recipe.compile(net, steps)
        print(f"\nTraining {net.name} for {recipe.epochs} epochs")
        start = time.perf_counter()
        net.fit(
            data.train,
            validation_data=data.validation,
            epochs=recipe.epochs,
            callbacks=[data.epoch_sync()],
            # The pipeline shuffles, by seed and epoch.
            shuffle=False,
            verbose="auto",
        )
        results[f"{name}_seconds"] = time.perf_counter() - start
    output = args.output or os.path.join(
        "runs", f"{_slug(data.name)}-{keras.backend.backend()}"
    )
    os.makedirs(output, exist_ok=True)
    for name, net in models.items():
        net.save(os.path.join(output, f"{name}.keras"))
    if "abnet" not in models:
        scores = models["baseline"].evaluate(
            data.test, verbose=0, return_dict=True
        )
        results["test"] = {k: float(v) for k, v in scores.items()}
        print(f"\nTest: {results['test']}")
        _write(results, output)
        return results["test"]
    model = models["abnet"]
    report = ka.evaluation.rank_heads(
        model,
        data.test,
        validation_data=data.validation,
        baseline=models["baseline"],
        verbose=0,
    )
    print()
    print(report)
    ka.evaluation.extract_head(model, report.best_head).save(
        os.path.join(output, "best_head.keras")
    )
    results.update(report.to_dict())
    _write(results, output)
    _plot(report, os.path.join(output, "head_report.png"))
    print(
        f"\nSaved abnet.keras, baseline.keras, best_head.keras (a plain "
        f"Keras model), results.json and head_report.png to {output}"
    )
    return report


def _write(results, output):
    with open(os.path.join(output, "results.json"), "w") as f:
        json.dump(results, f, indent=2)


def rank(args, data):
    """`keras-andhra rank MODEL`: ranks the heads of a saved model."""
    import keras

    import keras_andhra as ka

    try:
        model = keras.saving.load_model(args.saved_model)
        baseline = args.baseline and keras.saving.load_model(args.baseline)
    except (OSError, TypeError, ValueError) as error:
        message = str(error)
        if len(message) > 500:
            message = message[:500] + " ..."
        sys.exit(f"keras-andhra rank: {message}")
    report = ka.evaluation.rank_heads(
        model,
        data.test,
        validation_data=data.validation,
        baseline=baseline or None,
        verbose=0,
    )
    print(report)
    stem = os.path.splitext(args.saved_model)[0]
    _plot(report, args.plot or f"{stem}_report.png")
    return report


def _reproduce(args, recipe):
    from keras_andhra.experiments import reproduce

    seeds = args.seeds
    if seeds.isdigit():
        seeds = list(range(int(seeds)))
    else:
        try:
            seeds = [int(s) for s in seeds.split(",") if s]
        except ValueError:
            raise ValueError(
                "`--seeds` must be a count (3) or comma-separated ints "
                f"(0,1,2). Received: --seeds {args.seeds}"
            ) from None
    output = args.output or os.path.join(
        "runs", f"reproduce-{_slug(args.dataset)}"
    )
    return reproduce(
        args.dataset,
        [m for m in args.models.split(",") if m],
        seeds,
        output,
        recipe=recipe,
        data_dir=args.data_dir,
        select_on=args.select_on,
    )


def _slug(name):
    return os.path.basename(os.path.normpath(str(name))) or "data"


def _plot(report, path):
    try:
        report.plot(path)
    except ImportError as error:
        print(f"No plot: {error}")
    else:
        print(f"Plot written to {path}")


def _count(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)
