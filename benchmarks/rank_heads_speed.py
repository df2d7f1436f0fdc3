"""`rank_heads` time vs one `model.predict` over the same data.

`rank_heads` runs the model once over the data (all heads come out of the
one pass) and then works in NumPy: accuracies, intervals, top-5, losses,
the five ensembles and the greedy subset, Cochran's Q and, with a
baseline, a McNemar test per head and a paired bootstrap (2,000
resamples). This prints, per backend, the median time of

* `model.predict(x)`,
* `rank_heads(model, x, y)`,
* `rank_heads(model, x, y, baseline=baseline_predictions)` (with the
  significance tests; the baseline's predictions are given as an array,
  so only the ANDHRA model runs),

as ratios to `model.predict`, with a second `model.predict` as the noise
floor. Times are the best of `--steps` runs, round-robin: TensorFlow's
`predict` on CPU is bimodal (0.7 s or 1.3 s for the same call, alternating
whatever runs around it), which makes medians of a few runs swing. The
target is at most 1.2x.

    python benchmarks/rank_heads_speed.py                  # all backends
    python benchmarks/rank_heads_speed.py --backends jax --steps 3
"""

import json
import time

import backend_runner


def extra_arguments(parser):
    parser.add_argument("--num-examples", type=int, default=2048)


def measure(args):
    import numpy as np

    import keras_andhra as ka

    shape = (args.image_size, args.image_size, 3)
    rng = np.random.default_rng(0)
    x = rng.random((args.num_examples,) + shape, dtype=np.float32)
    y = rng.integers(0, 10, size=(args.num_examples,))
    baseline = rng.integers(0, 10, size=(args.num_examples,))
    model = ka.models.abnet(
        args.residual_units, width=args.width, input_shape=shape
    )
    batch = args.batch_size
    candidates = {
        "predict": lambda: model.predict(x, batch_size=batch, verbose=0),
        "rank": lambda: ka.evaluation.rank_heads(
            model, x, y, batch_size=batch, verbose=0
        ),
        "rank_baseline": lambda: ka.evaluation.rank_heads(
            model, x, y, baseline=baseline, batch_size=batch, verbose=0
        ),
        "predict_again": lambda: model.predict(x, batch_size=batch, verbose=0),
    }
    for run in candidates.values():
        for _ in range(args.warmup):
            run()
    times = {name: [] for name in candidates}
    for _ in range(args.steps):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    results = {name: min(t) for name, t in times.items()}
    print("RESULT " + json.dumps(results))


def title(args):
    return (
        f"8-head ABNet-2G-R{args.residual_units}, width {args.width}, "
        f"{args.num_examples} examples of {args.image_size}x"
        f"{args.image_size}x3, batch {args.batch_size}, best of "
        f"{args.steps} runs"
    )


def main():
    _, rows = backend_runner.run(
        __file__, __doc__, measure, extra_arguments, title
    )
    if rows is None:
        return
    print(
        "| backend | predict (s) | rank_heads / predict "
        "| rank_heads with baseline / predict | predict again / predict |"
    )
    print("|---|---|---|---|---|")
    for backend, r in rows:
        print(
            f"| {backend} | {r['predict']:.2f} "
            f"| {r['rank'] / r['predict']:.2f} "
            f"| {r['rank_baseline'] / r['predict']:.2f} "
            f"| {r['predict_again'] / r['predict']:.2f} |"
        )


if __name__ == "__main__":
    main()
