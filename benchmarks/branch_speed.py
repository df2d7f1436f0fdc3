"""Training-step time of an 8-head ABNet: stacked vs loop vs the baseline.

Runs each backend in its own process (KERAS_BACKEND is read at import) and
prints, per backend, the median `train_on_batch` time of

* the ABNet with every `BranchBlock` forced to `"loop"` (the reference),
* the same network forced to `"stacked"`,
* the same network with the default `"auto"` execution,
* the single-path baseline,

as ratios to the loop, next to the FLOP ratio ABNet / baseline.

    python benchmarks/branch_speed.py                  # all backends
    python benchmarks/branch_speed.py --backends torch --steps 5
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
    from keras_andhra import backend as ka_backend

    shape = (args.image_size, args.image_size, 3)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size,) + shape, dtype=np.float32)
    labels = rng.integers(0, 10, size=(args.batch_size,))

    def compiled(model):
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    def branched(execution):
        model = ka.models.abnet(
            args.residual_units, width=args.width, input_shape=shape
        )
        for layer in model.layers:
            if isinstance(layer, ka.layers.BranchBlock):
                layer.execution = execution
        return model

    head_labels = np.repeat(labels[:, None], 8, axis=1)
    candidates = {
        execution: (compiled(branched(execution)), head_labels)
        for execution in ("loop", "stacked", "auto")
    }
    baseline = ka.models.baseline_resnet(
        args.residual_units, width=args.width, input_shape=shape
    )
    candidates["baseline"] = (compiled(baseline), labels)
    for model, y in candidates.values():
        for _ in range(args.warmup):
            model.train_on_batch(x, y)
    # Round-robin, so that drift in machine load hits every candidate alike.
    times = {name: [] for name in candidates}
    for _ in range(args.steps):
        for name, (model, y) in candidates.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
    results = {name: statistics.median(t) for name, t in times.items()}
    results["device"] = ka_backend.device_kind()
    results["auto_is"] = "/".join(
        layer.resolved_execution[0]
        for layer in candidates["auto"][0].layers
        if isinstance(layer, ka.layers.BranchBlock)
    )
    results["flop_ratio"] = count_flops(candidates["loop"][0]) / count_flops(
        baseline
    )
    print("RESULT " + json.dumps(results))


def count_flops(model):
    """Multiply-adds x 2 of the convolutions and dense layers (forward)."""
    import keras

    import keras_andhra as ka

    total = 0
    for layer in _walk(model, keras, ka):
        if isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            k = layer.kernel.shape
            total += 2 * k[0] * k[1] * k[2] * k[3] * out[1] * out[2]
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def _walk(layer, keras, ka):
    if isinstance(layer, ka.layers.BranchBlock):
        for copy in layer.copies:
            yield from _walk(copy, keras, ka)
    elif isinstance(layer, keras.Model):
        for inner in layer.layers:
            yield from _walk(inner, keras, ka)
    else:
        yield layer


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
        "| backend | device | loop (ms) | stacked / loop | auto / loop "
        "| auto runs (per level) | baseline / loop | FLOP ratio AB / baseline "
        "| loop / (FLOP ratio x baseline) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for backend, r in rows:
        loop = r["loop"]
        print(
            f"| {backend} | {r['device']} | {loop * 1e3:.0f} "
            f"| {r['stacked'] / loop:.2f} | {r['auto'] / loop:.2f} "
            f"| {r['auto_is']} | {r['baseline'] / loop:.3f} "
            f"| {r['flop_ratio']:.2f} "
            f"| {loop / (r['flop_ratio'] * r['baseline']):.2f} |"
        )


if __name__ == "__main__":
    main()
