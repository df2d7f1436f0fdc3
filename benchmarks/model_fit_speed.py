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

import json

import backend_runner


def measure(args):
    import keras

    import keras_andhra as ka

    shape = (args.image_size, args.image_size, 3)
    x, y = backend_runner.synthetic_batch(args)
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
    results = backend_runner.median_step_times(candidates, x, args)
    print("RESULT " + json.dumps(results))


def main():
    args, rows = backend_runner.run(__file__, __doc__, measure)
    if rows is None:
        return
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
