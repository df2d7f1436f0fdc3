"""Trains small AndhraModels on one device and data-parallel; prints diffs.

Run by `distributed_test.py` in a fresh process (device counts are fixed
at import): `python data_parallel.py ENGINE CONFIG...` with ENGINE
`mirrored` (TensorFlow, 2 logical CPUs) or `data_parallel` (JAX, 2
simulated CPU devices). Prints one JSON line: per config, the largest
weight difference and the largest difference of the last epoch's logs.
"""

import json
import os
import sys

ENGINE = sys.argv[1]
if ENGINE == "data_parallel":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["KERAS_BACKEND"] = "jax"
else:
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf

    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * 2,
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_andhra as ka  # noqa: E402

L = keras.layers
AGGREGATORS = {
    "plain": lambda: None,
    "mean": lambda: ka.gradients.Mean(),
    "osgd": lambda: ka.gradients.OSGD(),
    "osgd_global": lambda: ka.gradients.OSGD(granularity="global"),
    "osgd_representation": lambda: ka.gradients.OSGD(
        granularity="representation"
    ),
    "pcgrad": lambda: ka.gradients.PCGrad(),
}


def build():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6,))
    x = L.Dense(8, kernel_regularizer="l2")(inputs)
    branches = ka.layers.AndhraSplit(2)(ka.layers.AndhraSplit(2)(x))
    branches = ka.layers.BranchBlock(L.Dense(3))(branches)
    return ka.models.AndhraModel(inputs, ka.layers.HeadCollector()(branches))


def train(config, scope):
    with scope:
        model = build()
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.gradient_aggregator = AGGREGATORS[config]()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, 64)
    history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    weights = [keras.ops.convert_to_numpy(v) for v in model.weights]
    return weights, {k: v[-1] for k, v in history.history.items()}


def main():
    import contextlib

    if ENGINE == "mirrored":
        # One strategy per process: TensorFlow's collectives of a second
        # MirroredStrategy in the same process can pair up wrongly.
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for config in sys.argv[2:]:
        one_weights, one_logs = train(config, contextlib.nullcontext())
        if ENGINE == "mirrored":
            scope = strategy.scope()
        else:
            keras.distribution.set_distribution(
                keras.distribution.DataParallel()
            )
            scope = contextlib.nullcontext()
        many_weights, many_logs = train(config, scope)
        if ENGINE == "data_parallel":
            keras.distribution.set_distribution(None)
        results[config] = {
            "weights": max(
                float(np.abs(a - b).max())
                for a, b in zip(one_weights, many_weights)
            ),
            "logs": max(abs(one_logs[k] - many_logs[k]) for k in one_logs),
            "keys_differ": sorted(set(one_logs) ^ set(many_logs)),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
