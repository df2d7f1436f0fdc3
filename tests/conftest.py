import atexit
import os
import shutil
import subprocess
import tempfile

# JAX keeps what XLA compiled on disk for this run: the same step compiled
# again (another seed, a reloaded model, a subprocess of a test) is read
# back instead of compiled. Set before JAX is imported; subprocesses
# inherit it. A fresh directory per run, so nothing crosses runs.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _jax_cache = tempfile.mkdtemp(prefix="keras-andhra-jax-cache-")
    atexit.register(shutil.rmtree, _jax_cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _jax_cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


def pytest_configure(config):
    # KERAS_BACKEND must be set before Python starts: importing tensorflow
    # first silently locks Keras to TensorFlow. Fail instead of testing the
    # wrong backend.
    requested = os.environ.get("KERAS_BACKEND")
    if requested and keras.backend.backend() != requested:
        raise pytest.UsageError(
            f"KERAS_BACKEND={requested} but Keras runs on "
            f"{keras.backend.backend()}."
        )


@pytest.fixture(autouse=True)
def seeded_weights():
    """Seeds Keras, NumPy and the backend before each test.

    Weight initialisation is then the same on every run of a backend, so a
    test that fails on CI fails the same way on a developer's machine.
    """
    keras.utils.set_random_seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def set_execution(model, execution):
    """Forces every BranchBlock of `model` to one execution."""
    from keras_andhra.layers import BranchBlock

    for layer in model.layers:
        if isinstance(layer, BranchBlock):
            layer.execution = execution


def run_python(arguments, env=None, timeout=600):
    """Runs `python ARGUMENTS` in a fresh process; fails on a non-zero exit.

    Returns the `CompletedProcess` (stdout and stderr as text).
    """
    import sys

    run = subprocess.run(
        [sys.executable, *map(str, arguments)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run
