"""Saved models load where serving jobs load them: in a fresh process."""

import os
import textwrap

import keras
import numpy as np
from conftest import run_python
from conftest import to_numpy

from keras_andhra import models

LOAD = textwrap.dedent(
    """
    import sys
    {first}
    import numpy as np
    model = keras.saving.load_model(sys.argv[1])
    x = np.load(sys.argv[2])
    y = model.predict(x, verbose=0)
    np.save(sys.argv[3], keras.ops.convert_to_numpy(y))
    """
)


def load_in_fresh_process(path, x, tmp_path, first, backend=None):
    """Loads `path` in a new Python, predicts on `x`, returns the output."""
    inputs, outputs = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(inputs, x)
    env = dict(os.environ, KERAS_BACKEND=backend or keras.backend.backend())
    run_python(["-c", LOAD.format(first=first), path, inputs, outputs], env=env)
    return np.load(outputs)


def trained_abnet(rng):
    model = models.abnet(0, width=4, num_levels=2, input_shape=(8, 8, 1))
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = rng.random((16, 8, 8, 1)).astype("float32")
    model.fit(x, rng.integers(0, 10, 16), epochs=1, verbose=0)
    return model, x


def test_loads_after_a_bare_import(rng, tmp_path):
    model, x = trained_abnet(rng)
    path = str(tmp_path / "abnet.keras")
    model.save(path)
    expected = to_numpy(model.predict(x, verbose=0))
    for first in (
        "import keras_andhra\nimport keras",
        "import keras\nimport keras_andhra",
    ):
        got = load_in_fresh_process(path, x, tmp_path, first)
        np.testing.assert_allclose(got, expected, atol=1e-6)
