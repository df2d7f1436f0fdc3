import csv
import dataclasses
import io
import json
import os

import numpy as np

from keras_andhra.evaluation import compare_runs
from keras_andhra.experiments import model_names
from keras_andhra.experiments import training_run

#: Rows reported per ANDHRA model: (label, how to read it from results).
ANDHRA_ROWS = (
    ("selected head", ("selected_head_accuracy",)),
    ("majority vote", ("ensembles", "majority")),
    ("weighted vote", ("ensembles", "weighted")),
    ("mean probability", ("ensembles", "mean_probability")),
    ("product of experts", ("ensembles", "product_of_experts")),
    ("borda", ("ensembles", "borda")),
)
#: The rows tested against the baseline (the paper's two claims).
TESTED = ("selected head", "majority vote")
_COLUMNS = (
    "model",
    "row",
    "runs",
    "mean",
    "std",
    "min",
    "max",
    "difference",
    "t",
    "t_p_value",
    "wilcoxon_p_value",
)


@dataclasses.dataclass
class Reproduction:
    """Seeds x models: every run's results and the aggregated table.

    What `reproduce` returns (and `Reproduction.from_directory` reads
    back). One row per reported score: a baseline's test accuracy, and
    for every ANDHRA model its validation-selected head and each of the
    five ensembles, as mean, standard deviation (ddof 0, the reference
    code's `np.std`), min and max over seeds. The selected head and the
    majority vote are compared with the baseline of the same R, paired by
    seed: the mean difference, the paired t-test (`ttest_rel`, the
    reference code's test) and the Wilcoxon signed-rank test.

    Attributes:
        config: The run configuration (dataset, recipe, select_on).
        runs: The results of every finished run (`results.json`).
        rows: The table, one dict per row (keys as in the CSV).

    Example:

    ```python
    import keras_andhra as ka

    # What `reproduce` reads back from its runs' results.json files
    # (`Reproduction.from_directory(output)`), here written by hand.
    runs = [
        {"model": "baseline-r0", "seed": s, "test": {"accuracy": a}}
        for s, a in enumerate([0.970, 0.974, 0.968])
    ] + [
        {
            "model": "abnet-r0",
            "seed": s,
            "test": {
                "selected_head_accuracy": h,
                "ensembles": {m: v for m in (
                    "majority", "weighted", "mean_probability",
                    "product_of_experts", "borda")},
            },
        }
        for s, (h, v) in enumerate([(0.975, 0.978), (0.973, 0.979),
                                    (0.972, 0.976)])
    ]
    table = ka.experiments.Reproduction(config={}, runs=runs)
    print(table.to_markdown())
    ```
    """

    config: dict
    runs: list
    rows: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if not self.rows:
            self.rows = _aggregate(self.runs)

    @classmethod
    def from_directory(cls, output):
        """Reads the runs finished under `output` (a `reproduce` folder)."""
        config_path = os.path.join(output, CONFIG)
        if not os.path.exists(config_path):
            raise ValueError(
                f"{output!r} holds no reproduction (no {CONFIG}); run "
                "`keras-andhra reproduce --output ...` first."
            )
        with open(config_path) as f:
            config = json.load(f)
        runs = []
        for model in sorted(os.listdir(output)):
            folder = os.path.join(output, model)
            if not os.path.isdir(folder):
                continue
            for run in sorted(os.listdir(folder)):
                path = os.path.join(folder, run, training_run.RESULTS)
                if os.path.exists(path):
                    with open(path) as f:
                        runs.append(json.load(f))
        return cls(config=config, runs=runs)

    def to_markdown(self):
        """The table as Markdown, accuracies in percent."""
        lines = [
            "| model | score | runs | mean ± std | min – max | vs baseline "
            "| paired t (p) | Wilcoxon p |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            versus = t_test = wilcoxon = ""
            if row["difference"] is not None:
                versus = f"{100 * row['difference']:+.2f}"
                t_test = f"{row['t']:.2f} ({row['t_p_value']:.3g})"
                wilcoxon = f"{row['wilcoxon_p_value']:.3g}"
            lines.append(
                f"| {row['model']} | {row['row']} | {row['runs']} | "
                f"{100 * row['mean']:.2f} ± {100 * row['std']:.2f} | "
                f"{100 * row['min']:.2f} – {100 * row['max']:.2f} | "
                f"{versus} | {t_test} | {wilcoxon} |"
            )
        return "\n".join(lines)

    def to_csv(self, path=None):
        """The table as CSV (fractions, not percent); writes `path` if given."""
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=_COLUMNS, extrasaction="ignore"
        )
        writer.writeheader()
        for row in self.rows:
            writer.writerow(row)
        text = buffer.getvalue()
        if path is not None:
            with open(path, "w", newline="") as f:
                f.write(text)
        return text

    def plot(self, path):
        """Every seed's score per row, with mean ± std: a PNG at `path`."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            from matplotlib import pyplot
        except ImportError:
            raise ImportError(
                "The plot needs matplotlib: `pip install matplotlib`."
            ) from None
        labels = [f"{r['model']}\n{r['row']}" for r in self.rows]
        figure, axis = pyplot.subplots(
            figsize=(max(6.0, 0.9 * len(self.rows)), 4.5)
        )
        for position, row in enumerate(self.rows):
            scores = 100 * np.asarray(row["scores"])
            jitter = np.linspace(-0.12, 0.12, len(scores))
            axis.scatter(position + jitter, scores, s=14, alpha=0.7)
            axis.errorbar(
                position,
                100 * row["mean"],
                yerr=100 * row["std"],
                fmt="_",
                color="black",
                capsize=6,
                markersize=18,
            )
        axis.set_xticks(range(len(self.rows)))
        axis.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(
            f"{self.config.get('dataset')}: every seed, mean ± std "
            f"(selected on {self.config.get('select_on')})"
        )
        axis.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        pyplot.close(figure)
        return path

    def __str__(self):
        return self.to_markdown()


CONFIG = "config.json"


def _read(results, keys):
    value = results["test"]
    for key in keys:
        value = value[key]
    return float(value)


def _aggregate(runs):
    by_model = {}
    for run in runs:
        by_model.setdefault(run["model"], {})[run["seed"]] = run
    rows = []
    for model in sorted(by_model, key=_order):
        family, _ = model_names.parse(model)
        entries = (
            [("accuracy", ("accuracy",))]
            if family == "baseline"
            else ANDHRA_ROWS
        )
        baseline = by_model.get(model_names.baseline_of(model), {})
        for label, keys in entries:
            seeds = sorted(by_model[model])
            scores = [_read(by_model[model][s], keys) for s in seeds]
            row = _row(model, label, scores)
            paired = [s for s in seeds if s in baseline]
            if family == "abnet" and label in TESTED and len(paired) >= 2:
                comparison = compare_runs(
                    [_read(baseline[s], ("accuracy",)) for s in paired],
                    [_read(by_model[model][s], keys) for s in paired],
                )
                row.update(
                    difference=comparison.mean_difference,
                    t=comparison.t_statistic,
                    t_p_value=comparison.t_p_value,
                    wilcoxon_p_value=comparison.wilcoxon_p_value,
                )
            rows.append(row)
    return rows


def _row(model, label, scores):
    scores = np.asarray(scores)
    return {
        "model": model,
        "row": label,
        "runs": len(scores),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "min": float(scores.min()),
        "max": float(scores.max()),
        "difference": None,
        "t": None,
        "t_p_value": None,
        "wilcoxon_p_value": None,
        "scores": scores.tolist(),
    }


def _order(model):
    family, residual_units = model_names.parse(model)
    return residual_units, family != "baseline"
