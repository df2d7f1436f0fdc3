"""The `keras-andhra` commands: train, build, rank and reproduce."""

import json
import math
import os
import sys


def recipe_of(args):
    """The data's `Recipe`, with the flags given on the command line."""
    from keras_andhra.experiments import Recipe

    return Recipe.for_dataset(args.dataset).replace(
        width=getattr(args, "width", None),
        epochs=getattr(args, "epochs", None),
        batch_size=getattr(args, "batch_size", None),
        learning_rate=getattr(args, "learning_rate", None),
        weight_decay=getattr(args, "weight_decay", None),
    )


def load_data(args, recipe):
    """The `ImageData` of `--dataset`, loaded the recipe's way."""
    return recipe.load_data(
        args.dataset, seed=args.seed, data_dir=args.data_dir
    )


def build(args, recipe, data):
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


def describe(models, args, recipe, data):
    """Prints the backend, the data, the recipe and the models built."""
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
    import keras

    import keras_andhra as ka

    results = {"dataset": data.name, "backend": keras.backend.backend()}
    results["recipe"] = recipe.to_dict()
    results.update(_fit(models, recipe, data))
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


def _fit(models, recipe, data):
    """Fits every model with the recipe; returns `{"<name>_seconds": s}`."""
    import time

    seconds = {}
    for name, net in models.items():
        print(f"\nTraining {net.name} for {recipe.epochs} epochs")
        start = time.perf_counter()
        recipe.fit(net, data)
        seconds[f"{name}_seconds"] = time.perf_counter() - start
    return seconds


def _write(results, output):
    with open(os.path.join(output, "results.json"), "w") as f:
        json.dump(results, f, indent=2)


def check_saved_models(args):
    """Refuses, before the data loads, files that cannot be saved models."""
    from keras_andhra.utils import arguments

    arguments.check_model_file("saved_model", args.saved_model)
    if args.baseline:
        arguments.check_model_file("--baseline", args.baseline)


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


def reproduce(args, recipe):
    """`keras-andhra reproduce`: seeds x models, then the statistics."""
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
