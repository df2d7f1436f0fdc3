"""The data pipeline's speed against what an ABNet consumes.

Three numbers per backend, on CIFAR-shaped synthetic images (uint8
32x32x3, 10 classes) through `keras_andhra.data.load_dataset` with the
CIFAR recipe's augmentation (pad 4 + crop + flip) and normalisation:

* pipeline images/s: iterating the training split alone, as `fit` reads
  it;
* fit images/s with the pipeline, and with the same number of
  pre-normalised images given to `fit` as in-memory arrays (Keras slices
  the batches, no augmentation);
* their ratio, the pipeline's cost inside `fit` (target <= 1.1).

Epoch times are medians over `--epochs` epochs after a warm-up epoch,
the two fits alternating epoch by epoch.

    python benchmarks/pipeline_speed.py                    # all backends
    python benchmarks/pipeline_speed.py --backends torch --width 8
"""

import json
import statistics
import time

import backend_runner


def extra(parser):
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=5)


def measure(args):
    import keras
    import numpy as np

    import keras_andhra as ka

    rng = np.random.default_rng(0)
    shape = (args.image_size, args.image_size, 3)
    images = rng.integers(0, 256, (args.images,) + shape, dtype="uint8")
    labels = rng.integers(0, 10, args.images)
    data = ka.data.load_dataset(
        ((images, labels), (images[:64], labels[:64])),
        batch_size=args.batch_size,
        validation_size=0,
        augmentation=ka.data.Augmentation(padding=4, flip=True),
        normalization="cifar10",
    )
    mean, std = (np.asarray(v, "float32") for v in data.normalization)
    arrays = ((images / 255.0 - mean) / std).astype("float32")

    start = time.perf_counter()
    for _ in range(2):
        for x, _ in data.train:
            np.asarray(x)
    pipeline = 2 * args.images / (time.perf_counter() - start)

    def model():
        net = ka.models.abnet(
            args.residual_units, width=args.width, input_shape=shape
        )
        net.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return net

    fits = {
        "pipeline": (
            model(),
            dict(x=data.train, callbacks=[data.epoch_sync()]),
        ),
        "arrays": (
            model(),
            dict(x=arrays, y=labels, batch_size=args.batch_size),
        ),
    }
    times = {name: [] for name in fits}
    for epoch in range(args.epochs + 1):
        for name, (net, kwargs) in fits.items():
            start = time.perf_counter()
            net.fit(epochs=1, shuffle=False, verbose=0, **kwargs)
            if epoch:
                times[name].append(time.perf_counter() - start)
    result = {
        "pipeline_images_per_s": pipeline,
        "pipeline_images_per_s_fit": args.images
        / statistics.median(times["pipeline"]),
        "arrays_images_per_s": args.images / statistics.median(times["arrays"]),
    }
    print("RESULT " + json.dumps(result))


def main():
    args, rows = backend_runner.run(
        __file__,
        __doc__,
        measure,
        extra,
        title=lambda a: (
            f"8-head ABNet-2G-R{a.residual_units}, width {a.width}, "
            f"{a.images} images of {a.image_size}x{a.image_size}x3, batch "
            f"{a.batch_size}, median of {a.epochs} epochs"
        ),
    )
    if rows is None:
        return
    print(
        "| backend | pipeline alone (img/s) | fit, pipeline (img/s) "
        "| fit, in-memory arrays (img/s) | pipeline step / array step |"
    )
    print("|---|---|---|---|---|")
    for backend, r in rows:
        ratio = r["arrays_images_per_s"] / r["pipeline_images_per_s_fit"]
        print(
            f"| {backend} | {r['pipeline_images_per_s']:.0f} "
            f"| {r['pipeline_images_per_s_fit']:.0f} "
            f"| {r['arrays_images_per_s']:.0f} "
            f"| {ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
