"""One training run of `reproduce`: resumable, selected on validation.

A run directory holds, while training, `backup/` (Keras's
`BackupAndRestore`, every epoch), `history.csv`, `selected.weights.h5`
with `selection.json` (the kept epoch); when done, `results.json`. A run
killed at any point and started again with the same arguments continues
from its last finished epoch, with the batches an uninterrupted run
would have seen; a finished run is not trained again.
"""

import json
import os
import time

import keras
import numpy as np

from keras_andhra.evaluation import ensembles
from keras_andhra.evaluation import rank_heads
from keras_andhra.experiments import model_names
from keras_andhra.models import AndhraModel

RESULTS = "results.json"
_SELECTION = "selection.json"
_WEIGHTS = "selected.weights.h5"
SELECT_ON = ("validation", "test")


def selection_metric(model):
    """The logged metric a run keeps its best epoch by (the vote's)."""
    if isinstance(model, AndhraModel):
        return "ensemble_accuracy"
    return "accuracy"


class SelectionCheckpoint(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best selection score.

    The score is the validation majority vote (`val_ensemble_accuracy`)
    for an ANDHRA model, `val_accuracy` for a baseline; with
    `select_on="test"` the same metric on the test data, evaluated every
    epoch as the reference code does (a selection bias, offered for
    faithfulness only). Ties keep the earlier epoch. The best score is
    stored next to the weights, so a resumed run keeps comparing with it.
    """

    def __init__(self, directory, metric, test_data=None):
        super().__init__()
        self.directory = directory
        self.metric = metric
        self.test_data = test_data

    def _state(self):
        path = os.path.join(self.directory, _SELECTION)
        if not os.path.exists(path):
            return {"epoch": None, "score": -np.inf}
        with open(path) as f:
            return json.load(f)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.test_data is not None:
            scores = self.model.evaluate(
                self.test_data, verbose=0, return_dict=True
            )
            for key, value in scores.items():
                logs[f"test_{key}"] = value
            key = f"test_{self.metric}"
        else:
            key = f"val_{self.metric}"
        if key not in logs:
            raise ValueError(
                f"Selecting the kept epoch needs `{key}` in the logs; it is "
                f"missing (available: {sorted(logs)}). Train with "
                "validation data and metrics=['accuracy']."
            )
        score = float(logs[key])
        if score > self._state()["score"]:
            self.model.save_weights(
                os.path.join(self.directory, _WEIGHTS), overwrite=True
            )
            with open(os.path.join(self.directory, _SELECTION), "w") as f:
                json.dump({"epoch": epoch, "score": score, "key": key}, f)

    def restore(self):
        """Loads the kept weights; returns the selection state."""
        state = self._state()
        if state["epoch"] is None:
            raise RuntimeError(
                f"No epoch was kept in {self.directory}: the run trained no "
                "epoch (epochs=0?) or its selection score was never finite."
            )
        self.model.load_weights(os.path.join(self.directory, _WEIGHTS))
        return state


def train_run(
    recipe, data, model_name, seed, directory, select_on="validation", verbose=0
):
    """Trains one model with one seed in `directory`; returns its results.

    Resumes from `directory/backup` when a previous attempt was stopped;
    returns the stored results without training when `results.json` is
    there. At the end the test split is read once: every head, the
    validation-selected head and the five ensembles (ANDHRA models), or
    the accuracy (baselines).

    Args:
        recipe: The `Recipe`.
        data: The `ImageData` (its `seed` is the run's data seed).
        model_name: A name from `model_names.MODEL_NAMES`.
        seed: Int, the seed of the weights' initialisation.
        directory: The run's directory.
        select_on: `"validation"` (default) or `"test"` (the reference
            code's choice, biased).
        verbose: Keras's `fit` verbosity.

    Returns:
        The results dict (also written to `directory/results.json`).
    """
    path = os.path.join(directory, RESULTS)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    if select_on not in SELECT_ON:
        raise ValueError(
            f"`select_on` must be one of {SELECT_ON}. Received: "
            f"select_on={select_on!r}"
        )
    if data.validation is None and select_on == "validation":
        raise ValueError(
            "Selecting on validation needs a validation split: load the data "
            "with validation_size > 0."
        )
    os.makedirs(directory, exist_ok=True)
    keras.utils.set_random_seed(seed)
    model = model_names.build_model(
        model_name, data.num_classes, data.image_shape, width=recipe.width
    )
    state, seconds = _fit(model, recipe, data, directory, select_on, verbose)
    results = {
        "model": model_names.canonical(model_name),
        "seed": seed,
        "dataset": data.name,
        "backend": keras.backend.backend(),
        "selected_epoch": state["epoch"] + 1,
        "selection": {
            "on": select_on,
            "key": state["key"],
            "score": state["score"],
        },
        "parameters": int(model.count_params()),
        "train_seconds": seconds,
    }
    results["test"] = _test_results(model, data, select_on)
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(path + ".tmp", path)
    return results


def _fit(model, recipe, data, directory, select_on, verbose):
    """Compiles and fits `model`, resumably, and loads the kept epoch.

    Returns the selection state and the seconds `fit` took.
    """
    selection = SelectionCheckpoint(
        directory,
        selection_metric(model),
        data.test if select_on == "test" else None,
    )
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(directory, "backup")),
        selection,
        keras.callbacks.CSVLogger(
            os.path.join(directory, "history.csv"), append=True
        ),
    ]
    start = time.perf_counter()
    recipe.fit(model, data, callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    return selection.restore(), seconds


def _test_results(model, data, select_on):
    """Reads the test split once and scores what the table reports."""
    if not isinstance(model, AndhraModel):
        scores = model.evaluate(data.test, verbose=0, return_dict=True)
        return {"accuracy": float(scores["accuracy"])}
    validation = data.validation if select_on == "validation" else None
    report = rank_heads(model, data.test, validation_data=validation, verbose=0)
    return {
        "heads": dict(zip(report.head_names, map(float, report.accuracy))),
        "selected_head": report.best_head,
        "selected_head_accuracy": float(
            report.accuracy[report.head_names.index(report.best_head)]
        ),
        "ensembles": {
            method: float(report.ensembles[method]["accuracy"])
            for method in ensembles.ENSEMBLE_METHODS
        },
    }
