"""What growth costs: gated vs static step time, and one widening event.

Per backend, round-robin median `train_on_batch` time of

* an MLP (64 -> 256 -> 10) and a CNN (32x32x3, 64 filters, global pool,
  10 classes) whose hidden layer is size-gated (`SizeGatedDense`,
  `SizeGatedConv2D`, half the units on), against the same networks with
  plain `Dense`/`Conv2D` at full width;
* the wall time of one `widen_layer` event doubling the gated layer
  (new variables, copied weights, optimizer state transplanted,
  functions rebuilt), and how much longer the first step after it takes
  than a normal step (the retrace of the train function).

    python benchmarks/growth_speed.py                  # all backends
    python benchmarks/growth_speed.py --backends jax --steps 5
"""

import json
import statistics
import time

import backend_runner


def measure(args):
    import keras
    import numpy as np

    import keras_andhra as ka

    L = keras.layers
    rng = np.random.default_rng(0)
    batch = args.batch_size
    mlp_x = rng.random((batch, 64), dtype="float32")
    cnn_x = rng.random((batch, args.image_size, args.image_size, 3)).astype(
        "float32"
    )
    y = rng.integers(0, 10, size=(batch,))

    def compiled(layers, x):
        model = keras.Sequential([keras.Input(x.shape[1:])] + layers)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    def mlp(gated):
        hidden = (
            ka.layers.SizeGatedDense(256, activation="relu", size=128.0)
            if gated
            else L.Dense(256, activation="relu")
        )
        return compiled([hidden, L.Dense(10)], mlp_x)

    def cnn(gated):
        hidden = (
            ka.layers.SizeGatedConv2D(
                64, 3, padding="same", activation="relu", size=32.0
            )
            if gated
            else L.Conv2D(64, 3, padding="same", activation="relu")
        )
        return compiled(
            [hidden, L.GlobalAveragePooling2D(), L.Dense(10)], cnn_x
        )

    candidates = {
        "mlp_static": (mlp(False), y, mlp_x),
        "mlp_gated": (mlp(True), y, mlp_x),
        "cnn_static": (cnn(False), y, cnn_x),
        "cnn_gated": (cnn(True), y, cnn_x),
    }
    times = {name: [] for name in candidates}
    for model, labels, x in candidates.values():
        for _ in range(args.warmup):
            model.train_on_batch(x, labels)
    for _ in range(args.steps):
        for name, (model, labels, x) in candidates.items():
            start = time.perf_counter()
            model.train_on_batch(x, labels)
            times[name].append(time.perf_counter() - start)
    results = {name: statistics.median(t) for name, t in times.items()}

    for name in ("mlp_gated", "cnn_gated"):
        model, labels, x = candidates[name]
        layer = model.layers[0]
        results[f"{name}_widen"] = ka.models.widen_layer(
            model, layer, 2 * layer.capacity
        )
        start = time.perf_counter()
        model.train_on_batch(x, labels)
        first = time.perf_counter() - start
        after = []
        for _ in range(args.steps):
            start = time.perf_counter()
            model.train_on_batch(x, labels)
            after.append(time.perf_counter() - start)
        results[f"{name}_retrace"] = first - statistics.median(after)
    print("RESULT " + json.dumps(results))


def title(args):
    return (
        f"batch {args.batch_size}, CNN input {args.image_size}x"
        f"{args.image_size}x3, median of {args.steps} train steps"
    )


def main():
    _, rows = backend_runner.run(__file__, __doc__, measure, title=title)
    if rows is None:
        return
    print(
        "| backend | MLP static (ms) | MLP gated / static | CNN static (ms) "
        "| CNN gated / static | widening, MLP (s) | widening, CNN (s) "
        "| first step after, extra (s) MLP / CNN |"
    )
    print("|---" * 8 + "|")
    for backend, r in rows:
        print(
            f"| {backend} | {r['mlp_static'] * 1e3:.2f} "
            f"| {r['mlp_gated'] / r['mlp_static']:.2f} "
            f"| {r['cnn_static'] * 1e3:.1f} "
            f"| {r['cnn_gated'] / r['cnn_static']:.2f} "
            f"| {r['mlp_gated_widen']:.2f} | {r['cnn_gated_widen']:.2f} "
            f"| {r['mlp_gated_retrace']:.2f} / {r['cnn_gated_retrace']:.2f} |"
        )


if __name__ == "__main__":
    main()
