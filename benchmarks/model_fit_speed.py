"""`AndhraModel` step time vs the same network as a multi-output model.

The multi-output model is what a Keras user writes without keras_andhra:
the eight heads as eight outputs, `loss=[ce] * 8`,
`loss_weights=[1 / 8] * 8`, `metrics=[["accuracy"]] * 8`. Both models
share the same layers. Also timed: `AndhraModel` with the per-head
gradient path (`gradient_aggregator = Mean()`), the hook that the
orthogonalising aggregators use.

    python benchmarks/model_fit_speed.py                  # all backends
    python benchmarks/model_fit_speed.py --backends jax --steps 5
"""

import argparse
import json
import statistics
import sys
import time

import backend_runner

BACKENDS = ("tensorflow", "jax", "torch")


def measure(args):
    import keras
    import numpy as np

    import keras_andhra as ka

    shape = (args.image_size, args.image_size, 3)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size,) + shape, dtype=np.float32)
    y = rng.integers(0, 10, size=(args.batch_size,))
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    andhra = ka.models.abnet(
        args.residual_units, width=args.width, input_shape=shape
    )
    andhra.compile(optimizer="sgd", loss=ce, metrics=["accuracy"])
    heads = andhra.num_heads
    multi = keras.Model(andhra.input, andhra.get_layer("heads").input)
    multi.compile(
        optimizer="sgd",
        loss=[ce] * heads,
        loss_weights=[1.0 / heads] * heads,
        metrics=[["accuracy"]] * heads,
    )
    per_head = ka.models.abnet(
        args.residual_units, width=args.width, input_shape=shape
    )
    per_head.compile(optimizer="sgd", loss=ce, metrics=["accuracy"])
    per_head.gradient_aggregator = ka.gradients.Mean()
    candidates = {
        "andhra": (andhra, y),
        "multi_output": (multi, [y] * heads),
        "per_head_mean": (per_head, y),
    }
    for model, labels in candidates.values():
        for _ in range(args.warmup):
            model.train_on_batch(x, labels)
    times = {name: [] for name in candidates}
    for _ in range(args.steps):
        for name, (model, labels) in candidates.items():
            start = time.perf_counter()
            model.train_on_batch(x, labels)
            times[name].append(time.perf_counter() - start)
    print(
        "RESULT "
        + json.dumps({k: statistics.median(v) for k, v in times.items()})
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--residual-units", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        measure(args)
        return
    rows = backend_runner.run_per_backend(__file__, sys.argv[1:], args.backends)
    print(
        f"8-head ABNet-2G-R{args.residual_units}, width {args.width}, "
        f"{args.image_size}x{args.image_size}, batch {args.batch_size}, "
        f"median of {args.steps} train steps"
    )
    print(
        "| backend | AndhraModel (ms) | multi-output (ms) "
        "| AndhraModel / multi-output | per-head Mean / AndhraModel |"
    )
    print("|---|---|---|---|---|")
    for backend, r in rows:
        print(
            f"| {backend} | {r['andhra'] * 1e3:.0f} "
            f"| {r['multi_output'] * 1e3:.0f} "
            f"| {r['andhra'] / r['multi_output']:.2f} "
            f"| {r['per_head_mean'] / r['andhra']:.2f} |"
        )


if __name__ == "__main__":
    main()
