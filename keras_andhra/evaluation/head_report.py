import json

import numpy as np

_ENSEMBLE_LABELS = {
    "majority": "majority vote",
    "weighted": "accuracy-weighted vote",
    "mean_probability": "mean probability",
    "product_of_experts": "product of experts",
    "borda": "rank (Borda) vote",
}


class HeadReport:
    """What `rank_heads` found: every head, the ensembles, the baseline.

    Print it for a table, `to_dict()` / `to_json()` for the numbers,
    `plot()` for a figure. `HeadReport.from_dict(report.to_dict())` gives
    the report back.

    Attributes:
        head_names: The heads, in model order.
        accuracy: Test accuracy per head, `(num_heads,)`.
        accuracy_interval: Its confidence interval (Wilson), `(heads, 2)`.
        top5_accuracy: Test top-5 accuracy per head, or `None` with five
            classes or fewer. Tied scores go to the smallest classes, as
            for accuracy (Keras's top-k metric counts every tie as a hit, so
            it can read higher when heads output exact ties).
        loss: Test cross-entropy per head.
        validation_accuracy, validation_loss: The same on the validation
            data, or `None` without it.
        parameters, flops: Parameters and forward FLOPs per example
            (two per multiply-add of convolutions and dense layers) of
            each head's path.
        best_head: The name of the best head, chosen on validation data
            when given (by accuracy, then loss), else on the test data.
        selection: `"validation"` or `"test"`, where the best head was
            chosen.
        ensembles: `{method: {"accuracy", "interval", ...}}` on the test
            data; with a baseline also McNemar's `b`, `c`, `p_value`.
        subset: The greedy subset (`{"heads", "accuracy", "interval"}`),
            chosen on the same data as the best head.
        baseline: `{"name", "accuracy", "interval", "parameters",
            "flops"}`, or `None`.
        significance: With a baseline, per head `{"b", "c", "p_value",
            "p_holm", "difference", "difference_interval"}`: exact
            McNemar (`b` examples only the head got right, `c` only the
            baseline), Holm-adjusted over the heads, and a paired bootstrap
            interval of the accuracy difference.
        cochran: `{"q", "p_value", "df"}`, Cochran's Q test that all heads
            have one accuracy.
        num_examples, num_validation_examples: Data sizes.
        confidence: The level of every interval.
        notes: Caveats, in words.

    Example:

    ```python
    import numpy as np
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, num_levels=1, input_shape=(8, 8, 1))
    x = np.random.rand(40, 8, 8, 1).astype("float32")
    y = np.random.randint(0, 10, size=(40,))
    report = ka.evaluation.rank_heads(model, x, y, verbose=0)
    report.best_head, report.accuracy, report.selection  # "test": see notes
    data = report.to_dict()  # JSON-ready; HeadReport.from_dict(data)
    ```
    """

    _FIELDS = (
        "head_names",
        "accuracy",
        "accuracy_interval",
        "top5_accuracy",
        "loss",
        "validation_accuracy",
        "validation_loss",
        "parameters",
        "flops",
        "best_head",
        "selection",
        "ensembles",
        "subset",
        "baseline",
        "significance",
        "cochran",
        "num_examples",
        "num_validation_examples",
        "confidence",
        "notes",
    )
    _ARRAYS = (
        "accuracy",
        "accuracy_interval",
        "top5_accuracy",
        "loss",
        "validation_accuracy",
        "validation_loss",
        "parameters",
        "flops",
    )

    def __init__(self, **fields):
        missing = set(self._FIELDS) - set(fields)
        unknown = set(fields) - set(self._FIELDS)
        if missing or unknown:
            raise TypeError(
                f"HeadReport fields missing: {sorted(missing)}, unknown: "
                f"{sorted(unknown)}."
            )
        for name in self._FIELDS:
            value = fields[name]
            if name in self._ARRAYS and value is not None:
                value = np.asarray(value)
            setattr(self, name, value)

    @property
    def best_index(self):
        """The position of `best_head` in `head_names`."""
        return self.head_names.index(self.best_head)

    def to_dict(self):
        """The report as a plain dict of lists, numbers and strings."""
        return {name: _plain(getattr(self, name)) for name in self._FIELDS}

    @classmethod
    def from_dict(cls, config):
        """Rebuilds a report from `to_dict()`'s output."""
        return cls(**config)

    def to_json(self, path=None):
        """The report as JSON text; also written to `path` if given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            with open(path, "w") as f:
                f.write(text + "\n")
        return text

    def __repr__(self):
        return (
            f"<HeadReport: {len(self.head_names)} heads, best "
            f"{self.best_head} ({self.accuracy[self.best_index]:.4f} test)>"
        )

    def __str__(self):
        lines = [self._title(), ""]
        lines += self._head_table()
        lines.append("")
        lines += self._summary()
        if self.notes:
            lines.append("")
            lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _title(self):
        where = (
            f"chosen on {self.num_validation_examples} validation examples"
            if self.selection == "validation"
            else "chosen on the test data itself"
        )
        return (
            f"Heads ranked on {self.num_examples} test examples "
            f"(best head {where}; intervals {self.confidence:.0%})"
        )

    def _head_table(self):
        columns = [("head", 10)]
        if self.validation_accuracy is not None:
            columns.append(("val acc", 9))
        columns += [("test acc", 10), ("interval", 18)]
        if self.top5_accuracy is not None:
            columns.append(("top-5", 8))
        columns += [("loss", 8), ("params", 11), ("MFLOPs", 8)]
        if self.significance is not None:
            columns += [("vs base", 9), ("p Holm", 8)]
        width = max(len(name) for name in self.head_names) + 2
        columns[0] = ("head", max(10, width))
        lines = ["".join(f"{n:<{w}}" for n, w in columns).rstrip()]
        order = np.argsort(-self.accuracy, kind="stable")
        for i in order:
            name = self.head_names[i]
            cells = [name]
            if self.validation_accuracy is not None:
                cells.append(f"{self.validation_accuracy[i]:.4f}")
            low, high = self.accuracy_interval[i]
            cells += [f"{self.accuracy[i]:.4f}", f"[{low:.3f}, {high:.3f}]"]
            if self.top5_accuracy is not None:
                cells.append(f"{self.top5_accuracy[i]:.4f}")
            cells += [
                f"{self.loss[i]:.4f}",
                f"{int(self.parameters[i]):,}",
                f"{self.flops[i] / 1e6:.2f}",
            ]
            if self.significance is not None:
                entry = self.significance[name]
                cells += [
                    f"{entry['difference']:+.4f}",
                    f"{entry['p_holm']:.3g}",
                ]
            line = "".join(f"{c:<{w}}" for c, (_, w) in zip(cells, columns))
            if name == self.best_head:
                line += f"<- best ({self.selection})"
            lines.append(line.rstrip())
        return lines

    def _summary(self):
        best = self.best_index
        low, high = self.accuracy_interval[best]
        lines = [
            f"Best head: {self.best_head}, test accuracy "
            f"{self.accuracy[best]:.4f} [{low:.3f}, {high:.3f}]"
        ]
        if self.baseline is not None:
            base = self.baseline
            low, high = base["interval"]
            lines.append(
                f"Baseline {base['name']}: test accuracy "
                f"{base['accuracy']:.4f} [{low:.3f}, {high:.3f}]"
                + (
                    f", {base['parameters']:,} parameters"
                    if base.get("parameters") is not None
                    else ""
                )
            )
            entry = self.significance[self.best_head]
            low, high = entry["difference_interval"]
            lines.append(
                f"Best head - baseline: {entry['difference']:+.4f} "
                f"[{low:+.4f}, {high:+.4f}] (paired bootstrap); exact "
                f"McNemar {entry['b']} vs {entry['c']} examples, p = "
                f"{entry['p_value']:.3g} (Holm over heads "
                f"{entry['p_holm']:.3g})"
            )
        lines.append("Ensembles on the test data:")
        for method, entry in self.ensembles.items():
            low, high = entry["interval"]
            line = (
                f"  {_ENSEMBLE_LABELS.get(method, method):<24}"
                f"{entry['accuracy']:.4f} [{low:.3f}, {high:.3f}]"
            )
            if "p_value" in entry:
                line += f"  vs baseline p = {entry['p_value']:.3g}"
            lines.append(line)
        if self.subset is not None:
            low, high = self.subset["interval"]
            lines.append(
                f"  {'greedy subset':<24}{self.subset['accuracy']:.4f} "
                f"[{low:.3f}, {high:.3f}]  heads "
                f"{', '.join(self.subset['heads'])} (chosen on "
                f"{self.selection})"
            )
        cochran = self.cochran
        lines.append(
            f"Cochran's Q across heads: Q = {cochran['q']:.3g}, df = "
            f"{cochran['df']}, p = {cochran['p_value']:.3g}"
        )
        return lines

    def plot(self, path=None):
        """Draws per-head accuracy with intervals, baseline and ensembles.

        Needs matplotlib (`pip install matplotlib`, or the `plot` extra).

        Args:
            path: Optional file to save the figure to (PNG, SVG, PDF...).

        Returns:
            The `matplotlib.figure.Figure`.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError(
                "`HeadReport.plot` needs matplotlib: `pip install "
                "matplotlib` (or `pip install keras-andhra[plot]`). The "
                "report itself prints without it: `print(report)`."
            ) from None
        ensembles = list(self.ensembles.items())
        if self.subset is not None:
            ensembles.append(("greedy subset", self.subset))
        heads = len(self.head_names)
        figure = Figure(figsize=(max(6.0, 0.55 * (heads + len(ensembles))), 4))
        axes = figure.subplots()
        x = np.arange(heads)
        ex = heads + 0.5 + np.arange(len(ensembles))
        self._draw_heads(axes, x)
        self._draw_ensembles(axes, ex, ensembles)
        if self.baseline is not None:
            self._draw_baseline(axes)
        labels = list(self.head_names) + [
            _ENSEMBLE_LABELS.get(m, m) for m, _ in ensembles
        ]
        axes.set_xticks(np.concatenate([x, ex]))
        axes.set_xticklabels(labels, rotation=45, ha="right")
        axes.set_ylabel("accuracy")
        axes.set_title(
            f"Heads on {self.num_examples} test examples (best "
            f"{self.best_head}, chosen on {self.selection})"
        )
        axes.grid(axis="y", alpha=0.3)
        axes.legend(loc="lower right", fontsize="small")
        figure.tight_layout()
        if path is not None:
            figure.savefig(path, dpi=120)
        return figure

    def _draw_heads(self, axes, x):
        errors = np.abs(self.accuracy_interval.T - self.accuracy)
        colors = ["C1" if i == self.best_index else "C0" for i in range(len(x))]
        axes.errorbar(
            x, self.accuracy, yerr=errors, fmt="none", ecolor="0.4", capsize=3
        )
        axes.scatter(x, self.accuracy, c=colors, zorder=3, label="heads")
        if self.validation_accuracy is not None:
            axes.scatter(
                x,
                self.validation_accuracy,
                marker="x",
                c="0.5",
                zorder=3,
                label="validation",
            )

    def _draw_ensembles(self, axes, x, ensembles):
        accuracy = np.array([entry["accuracy"] for _, entry in ensembles])
        interval = np.array([entry["interval"] for _, entry in ensembles])
        axes.errorbar(
            x,
            accuracy,
            yerr=np.abs(interval.T - accuracy),
            fmt="D",
            color="C2",
            capsize=3,
            label="ensembles",
        )

    def _draw_baseline(self, axes):
        low, high = self.baseline["interval"]
        axes.axhline(
            self.baseline["accuracy"],
            color="C3",
            linestyle="--",
            label=f"baseline {self.baseline['name']}",
        )
        axes.axhspan(low, high, color="C3", alpha=0.1)


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
