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

import json

import backend_runner


def measure(args):
    import keras
    import numpy as np

    import keras_andhra as ka
    from keras_andhra import backend as ka_backend

    shape = (args.image_size, args.image_size, 3)
    x, labels = backend_runner.synthetic_batch(args)

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
    results = backend_runner.median_step_times(candidates, x, args)
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
    args, rows = backend_runner.run(__file__, __doc__, measure)
    if rows is None:
        return
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
