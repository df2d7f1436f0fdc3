import dataclasses
import math
import warnings

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class RunComparison:
    """The result of `compare_runs`: scores of two methods over runs.

    Attributes:
        num_runs: Runs per method.
        baseline_mean, baseline_std, model_mean, model_std: Mean and
            population standard deviation (ddof 0, as the reference code's
            `np.std`) of each method's scores.
        mean_difference: Mean of `model - baseline` over the paired runs.
        difference_interval: Student-t confidence interval of that mean.
        t_statistic, t_p_value: Paired t-test, `ttest_rel(baseline,
            model)` (negative `t` when the model scores higher), the
            reference code's test.
        welch_p_value: Welch's unpaired t-test, for runs whose pairing by
            index means nothing (independent seeds).
        wilcoxon_p_value: Wilcoxon signed-rank test (exact for few runs;
            with 5 runs it cannot go below 0.0625).
        effect_size: Cohen's d_z, mean difference over the standard
            deviation (ddof 1) of the differences; 0 when every difference
            is 0, and infinite, with the difference's sign, when every
            difference is the same nonzero number.
        alpha: The significance level.
        significant: Whether the paired t-test's p-value is below `alpha`.

    Example:

    ```python
    import keras_andhra as ka

    result = ka.evaluation.compare_runs([0.91, 0.92, 0.90], [0.93, 0.95, 0.94])
    print(result)  # a three-line summary
    result.to_dict()["t_p_value"]
    ```
    """

    num_runs: int
    baseline_mean: float
    baseline_std: float
    model_mean: float
    model_std: float
    mean_difference: float
    difference_interval: tuple
    t_statistic: float
    t_p_value: float
    welch_p_value: float
    wilcoxon_p_value: float
    effect_size: float
    alpha: float
    significant: bool

    def to_dict(self):
        """The comparison as a plain, JSON-ready dict."""
        return dataclasses.asdict(self)

    def __str__(self):
        low, high = self.difference_interval
        verdict = "significant" if self.significant else "not significant"
        return "\n".join(
            [
                f"{self.num_runs} runs: baseline {self.baseline_mean:.4g} "
                f"+- {self.baseline_std:.3g}, model {self.model_mean:.4g} "
                f"+- {self.model_std:.3g}",
                f"difference {self.mean_difference:+.4g} "
                f"[{low:+.4g}, {high:+.4g}], effect size d_z "
                f"{self.effect_size:.3g}",
                f"paired t = {self.t_statistic:.4g}, p = "
                f"{self.t_p_value:.3g} ({verdict} at {self.alpha}); "
                f"Welch p = {self.welch_p_value:.3g}; Wilcoxon p = "
                f"{self.wilcoxon_p_value:.3g}",
            ]
        )


def compare_runs(baseline_scores, model_scores, *, alpha=0.05, confidence=0.95):
    """Compares two methods over repeated runs (seeds).

    The question across seeds is whether the method wins, not one trained
    network. This runs the reference code's paired t-test
    (`scipy.stats.ttest_rel(baseline, model)`), plus Welch's unpaired test
    (the runs are independent, so pairing them by index is arbitrary), the
    Wilcoxon signed-rank test, mean +- std of each method and an effect
    size.

    Args:
        baseline_scores: One score per run for the baseline (accuracies).
        model_scores: One score per run for the model, in run order.
        alpha: Significance level of `significant`.
        confidence: Level of the interval of the mean difference.

    Returns:
        A `RunComparison`, which prints as a short summary.

    Example:

    ```python
    import keras_andhra as ka

    # The five-run accuracies hard-coded in the reference `t-test.py`
    # (labelled "DBN" there; model and dataset unstated): baseline vs head.
    result = ka.evaluation.compare_runs(
        [78.44, 78.88, 78.71, 78.00, 79.02],
        [80.50, 80.72, 80.52, 80.33, 80.35],
    )
    round(result.t_statistic, 2), round(result.t_p_value, 5)  # -11.37, 0.00034
    ```
    """
    baseline = _scores(baseline_scores, "baseline_scores")
    model = _scores(model_scores, "model_scores")
    if len(baseline) != len(model):
        raise ValueError(
            "`baseline_scores` and `model_scores` need one score per run "
            f"each, the same number of runs. Received: {len(baseline)} and "
            f"{len(model)} scores."
        )
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1). Received: alpha={alpha}")
    difference = model - baseline
    n = len(difference)
    spread = difference.std(ddof=1)
    with warnings.catch_warnings():
        # One method scoring the same on every seed (common for accuracies
        # on small test sets) trips SciPy's cancellation check, though the
        # tests are well defined for it.
        warnings.filterwarnings(
            "ignore", "Precision loss occurred", RuntimeWarning
        )
        t = stats.ttest_rel(baseline, model)
        welch = stats.ttest_ind(baseline, model, equal_var=False)
        if np.all(difference == 0):
            wilcoxon_p = 1.0
        else:
            wilcoxon_p = float(stats.wilcoxon(baseline, model).pvalue)
    # `t` is of `baseline - model`; the interval is of `model - baseline`.
    interval = t.confidence_interval(confidence)
    mean = float(difference.mean())
    t_p = float(t.pvalue) if np.isfinite(t.pvalue) else 1.0
    return RunComparison(
        num_runs=n,
        baseline_mean=float(baseline.mean()),
        baseline_std=float(baseline.std()),
        model_mean=float(model.mean()),
        model_std=float(model.std()),
        mean_difference=mean,
        difference_interval=(-float(interval.high), -float(interval.low)),
        t_statistic=float(t.statistic),
        t_p_value=t_p,
        welch_p_value=float(welch.pvalue),
        wilcoxon_p_value=wilcoxon_p,
        effect_size=_effect_size(mean, spread),
        alpha=alpha,
        significant=bool(t_p < alpha),
    )


def _effect_size(mean, spread):
    if spread > 0:
        return float(mean / spread)
    return math.copysign(math.inf, mean) if mean != 0 else 0.0


def _scores(scores, name):
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if len(scores) < 2 or not np.all(np.isfinite(scores)):
        raise ValueError(
            f"`{name}` needs two finite scores or more, one per run. "
            f"Received: {name}={scores.tolist()}"
        )
    return scores
