import csv
import json
import math
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import run_python
from conftest import to_numpy

import keras_andhra as ka
from keras_andhra.experiments import model_names
from keras_andhra.experiments import training_run


def read_json(*path):
    with open(os.path.join(*map(str, path))) as f:
        return json.load(f)


def read_bytes(*path):
    with open(os.path.join(*map(str, path)), "rb") as f:
        return f.read()


def test_recipe_for_cifar_is_the_reference_codes():
    recipe = ka.experiments.Recipe.for_dataset("cifar100")
    assert (recipe.learning_rate, recipe.momentum, recipe.weight_decay) == (
        0.1,
        0.9,
        5e-4,
    )
    assert (recipe.epochs, recipe.batch_size, recipe.width) == (200, 128, 64)
    assert recipe.schedule == "cosine_per_epoch"
    assert str(recipe) == (
        "recipe cifar: SGD 0.1, momentum 0.9, coupled L2 0.0005 on every "
        "weight, cosine per epoch over 200 epochs, batch 128, width 64"
    )
    small = ka.experiments.Recipe.for_dataset("mnist-5000")
    assert small.name == "mnist-5000" and small.epochs < 20
    assert ka.experiments.Recipe.for_dataset("my_images").name == "default"


def test_recipe_replace_and_round_trip():
    recipe = ka.experiments.Recipe.for_dataset("cifar10").replace(
        epochs=3, width=None, augmentation=ka.data.Augmentation(2, False)
    )
    assert recipe.epochs == 3 and recipe.width == 64
    config = json.loads(json.dumps(recipe.to_dict()))
    assert ka.experiments.Recipe.from_dict(config) == recipe


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "`epochs` must be a positive int"),
        ({"batch_size": 2.5}, "`batch_size` must be a positive int"),
        ({"learning_rate": -0.1}, "`learning_rate` must be a number >= 0"),
        ({"schedule": "step"}, "`schedule` must be one of"),
    ],
)
def test_recipe_refuses_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        ka.experiments.Recipe.for_dataset("digits").replace(**change)


def test_epoch_cosine_decay_is_pytorchs_per_epoch_schedule():
    schedule = ka.experiments.EpochCosineDecay(0.1, epochs=4, steps_per_epoch=3)
    # CosineAnnealingLR(T_max=4) stepped after each epoch.
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(5)]
    got = [float(to_numpy(schedule(step))) for step in range(15)]
    np.testing.assert_allclose(
        got, np.repeat(expected, 3)[:15], rtol=1e-6, atol=1e-9
    )
    config = keras.saving.serialize_keras_object(schedule)
    again = keras.saving.deserialize_keras_object(config)
    assert float(to_numpy(again(7))) == pytest.approx(expected[2])
    with pytest.raises(ValueError, match="`epochs` must be a positive int"):
        ka.experiments.EpochCosineDecay(0.1, epochs=0, steps_per_epoch=3)


def test_build_model_by_name():
    model = ka.experiments.build_model("abnet-r0", 10, (8, 8, 1), width=2)
    assert model.num_heads == 8 and model.name == "abnet_2g_r0"
    assert model_names.parse("abnet-r3") == ("abnet", 3)
    baseline = ka.experiments.build_model("baseline", 10, (8, 8, 1), width=2)
    assert baseline.name == "bs_1g_r0"
    assert model_names.canonical("baseline") == "baseline-r0"
    assert model_names.baseline_of("abnet-r2") == "baseline-r2"
    assert set(ka.experiments.MODEL_NAMES) >= {"abnet-r3", "baseline-r3"}
    with pytest.raises(ValueError, match="Unknown model 'resnet'"):
        ka.experiments.build_model("resnet", 10, (8, 8, 1))
    with pytest.raises(ValueError, match="Unknown model 'abnet'"):
        model_names.parse("abnet")


def tiny_recipe(epochs=2):
    return ka.experiments.Recipe.for_dataset("digits").replace(
        epochs=epochs, width=2, batch_size=128
    )


def test_reproduce_trains_selects_on_validation_and_tabulates(
    tmp_path, capsys, monkeypatch
):
    test_reads = []
    original = training_run.rank_heads

    def counting(model, x, *args, **kwargs):
        test_reads.append(x)
        return original(model, x, *args, **kwargs)

    monkeypatch.setattr(training_run, "rank_heads", counting)
    output = str(tmp_path / "runs")
    table = ka.experiments.reproduce(
        "digits",
        ["baseline", "abnet-r0"],
        seeds=[0, 1],
        output=output,
        recipe=tiny_recipe(1),
    )
    out = capsys.readouterr().out
    assert "[4/4] abnet-r0 seed 1: test: selected head" in out
    assert "ETA" in out
    # The test split is read once per ANDHRA run, after training.
    assert len(test_reads) == 2
    rows = {(r["model"], r["row"]): r for r in table.rows}
    assert rows["baseline-r0", "accuracy"]["runs"] == 2
    vote = rows["abnet-r0", "majority vote"]
    runs = [
        read_json(output, "abnet-r0", f"seed-{s}", "results.json")
        for s in (0, 1)
    ]
    votes = [r["test"]["ensembles"]["majority"] for r in runs]
    assert vote["mean"] == pytest.approx(np.mean(votes))
    assert vote["std"] == pytest.approx(np.std(votes))
    assert vote["t_p_value"] is not None and vote["wilcoxon_p_value"] <= 1
    assert rows["abnet-r0", "borda"]["t"] is None
    for run in runs:
        assert run["selection"]["key"] == "val_ensemble_accuracy"
        assert run["selected_epoch"] == 1
        with open(
            os.path.join(
                output, "abnet-r0", f"seed-{run['seed']}", "history.csv"
            )
        ) as f:
            header = next(csv.reader(f))
        assert not any(key.startswith("test_") for key in header)
    with open(os.path.join(output, "results.csv")) as f:
        assert len(list(csv.DictReader(f))) == len(table.rows)
    markdown = read_bytes(output, "results.md").decode()
    assert "| abnet-r0 | majority vote | 2 |" in markdown
    assert read_bytes(output, "results.png")[:4] == b"\x89PNG"

    # Finished runs are skipped; the table reads back the same.
    again = ka.experiments.reproduce(
        "digits",
        ["baseline", "abnet-r0"],
        [0, 1],
        output,
        recipe=tiny_recipe(1),
    )
    assert capsys.readouterr().out.count("done before, skipped") == 4
    assert again.rows == table.rows
    # Another configuration is refused: nothing is overwritten.
    with pytest.raises(ValueError, match="holds runs of another config"):
        ka.experiments.reproduce(
            "digits", ["baseline"], [0], output, recipe=tiny_recipe(2)
        )


def test_reproduce_select_on_test_is_the_reference_codes(tmp_path):
    ka.experiments.reproduce(
        "digits",
        ["abnet-r0"],
        [0],
        str(tmp_path),
        recipe=tiny_recipe(1),
        select_on="test",
        verbose=0,
    )
    run = read_json(tmp_path, "abnet-r0", "seed-0", "results.json")
    assert run["selection"]["key"] == "test_ensemble_accuracy"
    with open(tmp_path / "abnet-r0" / "seed-0" / "history.csv") as f:
        assert "test_ensemble_accuracy" in next(csv.reader(f))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"models": []}, "`models` must name at least one"),
        ({"models": ["vgg"]}, "Unknown model 'vgg'"),
        ({"seeds": [0, 0]}, "`seeds` repeats a seed"),
        ({"seeds": ["a"]}, "`seeds` must be ints"),
        ({"select_on": "train"}, "`select_on` must be one of"),
    ],
)
def test_reproduce_refuses_bad_arguments(tmp_path, kwargs, message):
    arguments = dict(models=["baseline"], seeds=[0], output=str(tmp_path))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ka.experiments.reproduce("digits", **arguments, verbose=0)


def reproduce_command(output, epochs):
    return [
        sys.executable,
        "-m",
        "keras_andhra",
        "reproduce",
        "--dataset",
        "digits",
        "--models",
        "baseline",
        "--seeds",
        "1",
        "--epochs",
        str(epochs),
        "--width",
        "2",
        "--batch-size",
        "128",
        "--output",
        output,
    ]


def test_reproduce_killed_and_run_again_continues(tmp_path):
    """SIGKILL mid-run, the same command again: the uninterrupted result."""
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    killed = str(tmp_path / "killed")
    backup = os.path.join(killed, "baseline-r0", "seed-0", "backup")
    log = tmp_path / "killed.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            reproduce_command(killed, 4),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.time() + 300
    metadata = os.path.join(backup, "training_metadata.json")
    while time.time() < deadline and process.poll() is None:
        if os.path.exists(metadata):
            with open(metadata) as f:
                text = f.read()
            if text and json.loads(text)["epoch"] >= 2:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert os.path.isdir(backup), log.read_text()[-2000:]
    results = os.path.join(killed, "baseline-r0", "seed-0", "results.json")
    assert not os.path.exists(results), "the run ended before the kill"
    for output in (killed, str(tmp_path / "whole")):
        run_python(reproduce_command(output, 4)[1:], env=env)
    resumed = read_json(results)
    whole = read_json(
        tmp_path, "whole", "baseline-r0", "seed-0", "results.json"
    )
    assert resumed["selected_epoch"] == whole["selected_epoch"]
    assert resumed["selection"] == whole["selection"]
    assert resumed["test"] == whole["test"]
    assert not os.path.exists(backup)  # removed once the run finished
