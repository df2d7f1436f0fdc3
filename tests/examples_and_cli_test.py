import importlib.util
import json
import pathlib

import numpy as np
import pytest

from keras_andhra import cli

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_branched_network_trains_four_heads(capsys):
    accuracy = load_example("custom_branched_network").main(epochs=5)
    assert list(accuracy) == ["head_00", "head_01", "head_10", "head_11"]
    # Five epochs on digits: every head is well above chance (0.1).
    assert min(accuracy.values()) > 0.5
    assert "head_11:" in capsys.readouterr().out


def test_abnet_family_sizes():
    rows = load_example("abnet_family").main(width=8, residual_units=(0,))
    name, baseline, abnet = rows[0]
    assert name == "R0" and abnet > 6 * baseline


def test_main_job_builds_and_summarises(capsys):
    cli.main(["build", "--width", "4"])
    out = capsys.readouterr().out
    assert "8 heads" in out
    assert "head_000, head_001" in out
    assert "= the baseline bs_1g_r0" in out


def test_main_job_options_count_before_and_after_the_command(capsys):
    cli.main(["--width", "4", "--num-levels", "2", "build"])
    assert "4 heads, width 4" in capsys.readouterr().out
    cli.main(["--width", "8", "build", "--width", "4", "--num-levels", "1"])
    assert "2 heads, width 4" in capsys.readouterr().out


def test_main_job_reports_bad_arguments(capsys):
    try:
        cli.main(["--num-branches", "0"])
    except SystemExit as exit:
        assert "`num_branches` must be at least 1" in str(exit.code)
    else:
        raise AssertionError("expected SystemExit")


def test_main_job_trains_reports_and_ranks_a_saved_model(tmp_path, capsys):
    # The console script exits with what `main` returns: 0 on success.
    digits = ["--dataset", "digits"]
    status = cli.main(
        ["train", *digits, "--epochs", "1", "--width", "4"]
        + ["--num-levels", "1", "--output", str(tmp_path)]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "recipe digits: SGD 0.05, momentum 0.9" in out
    assert "<- best (validation)" in out
    assert "majority vote" in out and "Baseline bs_1g_r0" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["head_names"] == ["head_0", "head_1"]
    assert results["best_head"] in results["head_names"]
    assert results["selection"] == "validation"
    assert results["recipe"]["epochs"] == 1
    for name in ("abnet", "baseline", "best_head"):
        assert (tmp_path / f"{name}.keras").exists()
    assert (tmp_path / "head_report.png").read_bytes()[:4] == b"\x89PNG"

    plot = tmp_path / "ranked.png"
    ranked = cli.run(
        [
            "rank",
            str(tmp_path / "abnet.keras"),
            *digits,
            "--baseline",
            str(tmp_path / "baseline.keras"),
            "--plot",
            str(plot),
        ]
    )
    out = capsys.readouterr().out
    assert "Heads ranked on 360 test examples" in out
    # Ranking the saved model reproduces the report the main job saved.
    ranked = json.loads(json.dumps(ranked.to_dict()))
    assert ranked == {key: results[key] for key in ranked}
    assert plot.exists()


def test_main_job_trains_a_baseline_alone(tmp_path, capsys):
    scores = cli.run(
        ["train", "--dataset", "digits", "--model", "baseline", "--epochs"]
        + ["1", "--width", "2", "--output", str(tmp_path)]
    )
    assert 0.0 <= scores["accuracy"] <= 1.0
    assert (tmp_path / "baseline.keras").exists()
    assert not (tmp_path / "abnet.keras").exists()


def test_rank_reports_a_missing_model(tmp_path):
    with pytest.raises(SystemExit) as exit:
        cli.main(["rank", str(tmp_path / "none.keras")])
    assert "keras-andhra rank:" in str(exit.value.code)


def test_cifar_without_data_or_network_fails_fast():
    with pytest.raises(SystemExit) as exit:
        cli.main(["--dataset", "cifar10", "--epochs", "1"])
    assert "--data-dir" in str(exit.value.code)


def test_cifar_recipe_smoke_run_on_synthetic_data(capsys):
    example = load_example("cifar_abnet")
    report = example.main(
        [
            "--synthetic",
            "--epochs",
            "1",
            "--subset",
            "32",
            "--width",
            "2",
            "--batch-size",
            "16",
            "--num-levels",
            "1",
        ]
    )
    assert report.selection == "validation"
    assert report.head_names == ["head_0", "head_1"]
    out = capsys.readouterr().out
    assert "recipe cifar: SGD 0.1, momentum 0.9, coupled L2 0.0005" in out
    assert "pad 4 + random crop + flip" in out


def test_coupled_weight_decay_covers_every_weight():
    import keras_andhra as ka

    model = ka.models.baseline_resnet(0, width=2, input_shape=(8, 8, 3))
    ka.experiments.Recipe.for_dataset("cifar10").compile(model, 10)
    expected = sum(
        2.5e-4 * float((keras_numpy(w) ** 2).sum())
        for w in model.trainable_weights
    )
    got = sum(float(keras_numpy(loss)) for loss in model.losses)
    assert len(model.losses) == len(model.trainable_weights)
    assert got == pytest.approx(expected, rel=1e-5)


def keras_numpy(x):
    import keras

    return keras.ops.convert_to_numpy(x)


def test_backend_flag_chooses_the_backend():
    import os

    import keras
    from conftest import run_python

    backend = keras.backend.backend()
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    run = run_python(
        ["-m", "keras_andhra", "build", "--backend", backend, "--width", "2"]
        + ["--num-levels", "1", "--dataset", "digits"],
        env=env,
        timeout=300,
    )
    assert f"backend {backend} on" in run.stdout


def test_anytime_example_compares_every_exit(capsys):
    example = load_example("anytime_osgd")
    (x_train, y_train), (x_test, y_test) = example.ka.data.load_digits()
    data = (
        (x_train[:900], y_train[:900]),
        (x_train[1200:], y_train[1200:]),
        (x_test, y_test),
    )
    rows = example.compare(
        "anytime",
        example.anytime_network,
        data,
        seeds=2,
        epochs=3,
        make_callback=lambda: example.ka.callbacks.OrthogonalGradients(),
    )
    assert [name for name, _, _ in rows] == [f"exit_{i}" for i in range(4)]
    for _, plain, osgd in rows:
        assert plain.shape == osgd.shape == (2,)
        assert ((0 <= plain) & (plain <= 1) & (0 <= osgd) & (osgd <= 1)).all()
    # Same seeds, different training: OSGD changes what the exits learn.
    assert any((plain != osgd).any() for _, plain, osgd in rows)
    # The deepest exit learns digits in three epochs (chance is 0.1).
    assert rows[-1][1].mean() > 0.3
    assert "exit_3" in capsys.readouterr().out


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_nimble_example_grows_and_compares(task, capsys):
    example = load_example("nimble_regression")
    results, ratio = example.main(
        ["--task", task, "--trials", "3", "--epochs", "400"]
    )
    out = capsys.readouterr().out
    assert "growing  (N0 = 0)" in out and "ratio growing / grown" in out
    assert set(results) == {"growing", "grown"}
    for losses in results.values():
        assert losses.shape == (3,) and np.isfinite(losses).all()
    assert np.isfinite(ratio) and ratio > 0
    # The growing networks' size left 0: the size loss pulls it to 5.
    sizes = [
        float(line.split("final size ")[1].split(" ")[0])
        for line in out.splitlines()
        if line.startswith("growing")
    ]
    assert 0.0 < sizes[0] < 5.0
