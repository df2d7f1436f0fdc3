"""Data-parallel training equals one device (fresh processes)."""

import json
import os
import pathlib

import keras
import pytest
from conftest import run_python

WORKERS = pathlib.Path(__file__).parent / "workers"
CONFIGS = [
    "plain",
    "mean",
    "osgd",
    "osgd_global",
    "osgd_representation",
    "pcgrad",
]


def run_worker(script, *args):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    run = run_python([WORKERS / script, *args], env=env)
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.distribute runs on the TensorFlow backend",
)
def test_mirrored_strategy_equals_one_device():
    results = run_worker("data_parallel.py", "mirrored", *CONFIGS)
    for config in CONFIGS:
        assert results[config]["keys_differ"] == [], config
        assert results[config]["weights"] <= 1e-5, (config, results)
        assert results[config]["logs"] <= 1e-5, (config, results)


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="keras.distribution runs on the JAX backend",
)
def test_jax_data_parallel_equals_one_device():
    results = run_worker("data_parallel.py", "data_parallel", *CONFIGS)
    for config in CONFIGS:
        assert results[config]["keys_differ"] == [], config
        assert results[config]["weights"] <= 1e-5, (config, results)
        assert results[config]["logs"] <= 1e-5, (config, results)
