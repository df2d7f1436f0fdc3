"""Seconds per CIFAR epoch of the paper's models under the CIFAR recipe.

Every model of `keras-andhra reproduce --dataset cifar10` (baseline and
ABNet-2G-R0..R3 at the paper's width 64), compiled with
`Recipe.for_dataset("cifar10")` (SGD 0.1, momentum 0.9, coupled L2 on
every weight, batch 128), on CIFAR-shaped synthetic batches (no machine
here can download CIFAR). The median training step times the 352 steps
of an epoch of 45,000 images (50,000 less the 5,000 validation images)
gives seconds per epoch; 200 epochs give the run.

    python benchmarks/recipe_epoch_time.py --backends tensorflow
    python benchmarks/recipe_epoch_time.py --models baseline-r0 abnet-r0
"""

import json
import math
import statistics
import time

import backend_runner

TRAIN_IMAGES = 45_000


def extra(parser):
    parser.add_argument(
        "--models",
        nargs="+",
        default=[f"{f}-r{r}" for r in range(4) for f in ("baseline", "abnet")],
    )
    parser.set_defaults(width=64, batch_size=128, warmup=1, steps=3)


def measure(args):
    import keras_andhra as ka

    x, y = backend_runner.synthetic_batch(args)
    recipe = ka.experiments.Recipe.for_dataset("cifar10").replace(
        width=args.width, batch_size=args.batch_size
    )
    steps_per_epoch = math.ceil(TRAIN_IMAGES / args.batch_size)
    result = {}
    for name in args.models:
        model = ka.experiments.build_model(
            name, 10, x.shape[1:], width=recipe.width
        )
        recipe.compile(model, steps_per_epoch)
        for _ in range(args.warmup):
            model.train_on_batch(x, y)
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        result[name] = {
            "parameters": model.count_params(),
            "step": statistics.median(times),
            "epoch": statistics.median(times) * steps_per_epoch,
        }
        del model
    print("RESULT " + json.dumps(result))


def main():
    args, rows = backend_runner.run(
        __file__,
        __doc__,
        measure,
        extra,
        title=lambda a: (
            f"CIFAR recipe, width {a.width}, batch {a.batch_size}, "
            f"median of {a.steps} steps x "
            f"{math.ceil(TRAIN_IMAGES / a.batch_size)} steps per epoch"
        ),
    )
    if rows is None:
        return
    print(
        "| backend | model | parameters | step (s) | epoch (s) "
        "| 200 epochs (h) |"
    )
    print("|---|---|---|---|---|---|")
    for backend, result in rows:
        for name, r in result.items():
            print(
                f"| {backend} | {name} | {r['parameters'] / 1e6:.2f}M "
                f"| {r['step']:.2f} | {r['epoch']:.0f} "
                f"| {200 * r['epoch'] / 3600:.1f} |"
            )


if __name__ == "__main__":
    main()
