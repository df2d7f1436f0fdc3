import json
import os
import time

from keras_andhra.experiments import model_names
from keras_andhra.experiments import training_run
from keras_andhra.experiments.recipe import Recipe
from keras_andhra.experiments.reproduction import CONFIG
from keras_andhra.experiments.reproduction import Reproduction
from keras_andhra.utils import arguments


def reproduce(
    dataset,
    models=("baseline", "abnet-r0"),
    seeds=(0, 1, 2, 3, 4),
    output="runs/reproduce",
    *,
    recipe=None,
    data_dir=None,
    select_on="validation",
    verbose=1,
):
    """Runs the paper's experiment: seeds x models, then its statistics.

    Every model is trained once per seed with the dataset's `Recipe`
    (the seed fixes the weights' initialisation, the training order and
    the augmentation; the validation and test splits are the same for
    every run). Each run lives in `output/<model>/seed-<k>/`, backed up
    every epoch: kill the command and run it again, and it continues
    where it stopped; finished runs are skipped. The kept epoch of each
    run is the best validation majority vote (the validation accuracy for
    a baseline); at the end the test split is read once. Then the table:
    mean ± std over seeds of the baseline, the validation-selected head
    and the five ensembles, with a paired t-test and a Wilcoxon test of
    the selected head and of the majority vote against the baseline of
    the same R, written as `results.md`, `results.csv` and `results.png`.

    The reference code selects checkpoints and heads on the test set;
    `select_on="test"` does that, for faithfulness only: its test
    accuracies are biased upwards.

    Args:
        dataset: A source `load_dataset` takes (`"cifar10"`,
            `"mnist-5000"`, a directory, ...).
        models: Model names (`"baseline"`, `"baseline-r1"`, `"abnet-r0"`,
            ...; see `keras_andhra.experiments.MODEL_NAMES`).
        seeds: Ints, one run per seed and model.
        output: The folder of the runs and tables. A folder holding runs
            of another configuration (dataset, recipe, selection) is
            refused: nothing trained is overwritten.
        recipe: A `Recipe`; default `Recipe.for_dataset(dataset)`.
        data_dir: tensorflow-datasets data directory.
        select_on: `"validation"` or `"test"`.
        verbose: 0 (silent), 1 (one line per run, with an ETA) or 2 (and
            Keras's progress bars).

    Returns:
        A `Reproduction`.

    Example:

    ```python
    import tempfile
    import keras_andhra as ka

    # Two seeds of the baseline, one quick epoch each, on the digits.
    recipe = ka.experiments.Recipe.for_dataset("digits").replace(
        epochs=1, width=2
    )
    table = ka.experiments.reproduce(
        "digits", ["baseline"], seeds=[0, 1],
        output=tempfile.mkdtemp(), recipe=recipe, verbose=0,
    )
    print(table)  # test accuracy, mean ± std over the two seeds
    ```

    From the command line, the paper's CIFAR-10 experiment (five seeds of
    the baseline and ABNet-2G-R0, the reference recipe):

    ```bash
    keras-andhra reproduce --dataset cifar10 --models baseline,abnet-r0
    ```

    (add `--data-dir DIR` for tensorflow-datasets data prepared offline;
    the default is five seeds).
    """
    recipe = (
        recipe
        if recipe is not None
        else Recipe.for_dataset(
            os.fspath(dataset) if not isinstance(dataset, tuple) else "arrays"
        )
    )
    models = [model_names.canonical(m) for m in _as_list(models, "models")]
    seeds = _check_seeds(seeds)
    if select_on not in training_run.SELECT_ON:
        raise ValueError(
            f"`select_on` must be one of {training_run.SELECT_ON}. "
            f"Received: select_on={select_on!r}"
        )
    config = {
        "dataset": dataset if isinstance(dataset, str) else repr(dataset),
        "recipe": recipe.to_dict(),
        "select_on": select_on,
    }
    _claim(output, config)
    say = print if verbose else _silent
    say(str(recipe))
    _train_all(
        dataset,
        models,
        seeds,
        output,
        recipe,
        data_dir=data_dir,
        select_on=select_on,
        verbose=verbose,
    )
    table = Reproduction.from_directory(output)
    table.to_csv(os.path.join(output, "results.csv"))
    with open(os.path.join(output, "results.md"), "w") as f:
        f.write(table.to_markdown() + "\n")
    try:
        table.plot(os.path.join(output, "results.png"))
    except ImportError as error:
        say(f"No plot: {error}")
    say(table.to_markdown())
    return table


def _train_all(
    dataset, models, seeds, output, recipe, *, data_dir, select_on, verbose
):
    """Trains every run not done yet, saying one line about each.

    The data is loaded once per seed, when a run of that seed is left.
    """
    say = print if verbose else _silent
    total = len(models) * len(seeds)
    done = 0
    durations = {}
    for seed in seeds:
        data = None
        for model in models:
            done += 1
            directory = os.path.join(output, model, f"seed-{seed}")
            label = f"[{done}/{total}] {model} seed {seed}"
            if os.path.exists(os.path.join(directory, training_run.RESULTS)):
                say(f"{label}: done before, skipped")
                continue
            if data is None:
                data = recipe.load_data(dataset, seed=seed, data_dir=data_dir)
            start = time.perf_counter()
            results = training_run.train_run(
                recipe,
                data,
                model,
                seed,
                directory,
                select_on=select_on,
                verbose=1 if verbose >= 2 else 0,
            )
            seconds = time.perf_counter() - start
            durations.setdefault(model, []).append(seconds)
            say(
                f"{label}: {_summary(results)}, epoch "
                f"{results['selected_epoch']} kept, {seconds:.0f} s; ETA "
                f"{_duration(_eta(output, models, seeds, durations))}"
            )


def _silent(*args, **kwargs):
    pass


def _eta(output, models, seeds, durations):
    """Seconds left: each unfinished run at its model's mean so far."""
    everything = [d for runs in durations.values() for d in runs]
    total = 0.0
    for seed in seeds:
        for model in models:
            path = os.path.join(
                output, model, f"seed-{seed}", training_run.RESULTS
            )
            if not os.path.exists(path):
                runs = durations.get(model, everything)
                total += sum(runs) / len(runs)
    return total


def _claim(output, config):
    """Writes `config.json`, or checks that the folder's matches."""
    path = os.path.join(output, CONFIG)
    if os.path.exists(path):
        with open(path) as f:
            existing = json.load(f)
        if existing != json.loads(json.dumps(config)):
            changed = sorted(
                key
                for key in set(existing) | set(config)
                if existing.get(key) != json.loads(json.dumps(config)).get(key)
            )
            raise ValueError(
                f"{output!r} holds runs of another configuration (they "
                f"differ in {', '.join(changed)}); they are not overwritten. "
                "Choose another `output` folder, or run the same command as "
                f"before (its configuration is in {path})."
            )
        return
    os.makedirs(output, exist_ok=True)
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


def _as_list(values, name):
    if isinstance(values, str):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"`{name}` must name at least one. Received: []")
    return values


def _check_seeds(seeds):
    seeds = _as_list(seeds, "seeds")
    for seed in seeds:
        if not arguments.is_int(seed):
            raise ValueError(f"`seeds` must be ints. Received: seeds={seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` repeats a seed. Received: seeds={seeds!r}")
    return seeds


def _summary(results):
    test = results["test"]
    if "accuracy" in test:
        return f"test accuracy {test['accuracy']:.4f}"
    return (
        f"test: selected head {test['selected_head']} "
        f"{test['selected_head_accuracy']:.4f}, majority vote "
        f"{test['ensembles']['majority']:.4f}"
    )


def _duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
