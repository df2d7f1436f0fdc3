import warnings

import numpy as np
import pytest
from scipy import stats

import keras_andhra as ka
from keras_andhra.evaluation import ensembles
from keras_andhra.evaluation import statistics


def random_probabilities(n=60, heads=5, classes=4, seed=0):
    logits = np.random.default_rng(seed).normal(size=(n, heads, classes))
    exp = np.exp(logits)
    return exp / exp.sum(-1, keepdims=True)


def reference(probabilities, method, weights):
    """One example at a time, written from the definitions."""
    predictions = []
    for example in probabilities:
        classes = example.shape[-1]
        scores = np.zeros(classes)
        for h, p in enumerate(example):
            if method == "majority":
                scores[np.argmax(p)] += 1
            elif method == "weighted":
                scores[np.argmax(p)] += weights[h]
            elif method == "mean_probability":
                scores += p / len(example)
            elif method == "product_of_experts":
                scores += np.log(p + 1e-10)
            else:
                for rank, c in enumerate(
                    sorted(range(classes), key=lambda c: -p[c])
                ):
                    scores[c] += 1.0 / (rank + 1)
        predictions.append(int(np.argmax(scores)))
    return np.array(predictions)


@pytest.mark.parametrize("method", ensembles.ENSEMBLE_METHODS)
def test_ensembles_follow_their_definitions(method):
    probabilities = random_probabilities()
    weights = [0.9, 0.5, 0.7, 0.2, 0.6]
    got = ka.evaluation.ensemble_predict(
        probabilities, method=method, weights=weights
    )
    np.testing.assert_array_equal(
        got, reference(probabilities, method, weights)
    )
    logits = np.log(probabilities) + 3.0
    np.testing.assert_array_equal(
        ka.evaluation.ensemble_predict(logits, method=method, weights=weights),
        got,
    )


def test_majority_ties_go_to_the_smallest_class_as_scipy_mode():
    votes = np.array([[2, 1, 1, 2], [3, 0, 0, 3], [1, 2, 3, 0]])
    probabilities = np.eye(4)[votes]
    got = ka.evaluation.ensemble_predict(probabilities, method="majority")
    np.testing.assert_array_equal(got, stats.mode(votes, axis=1).mode)
    np.testing.assert_array_equal(got, [1, 0, 0])


def test_weighted_vote_really_uses_the_weights():
    probabilities = np.eye(2)[np.array([[0, 1, 1]])]
    majority = ka.evaluation.ensemble_predict(probabilities, method="majority")
    weighted = ka.evaluation.ensemble_predict(
        probabilities, method="weighted", weights=[0.9, 0.3, 0.3]
    )
    assert majority[0] == 1 and weighted[0] == 0


def test_ensemble_of_chosen_heads():
    probabilities = random_probabilities()
    got = ka.evaluation.ensemble_predict(
        probabilities, method="mean_probability", heads=[3]
    )
    np.testing.assert_array_equal(got, probabilities[:, 3].argmax(-1))
    for heads in (3, np.int64(3), np.array([3]), [np.int32(-2)]):
        np.testing.assert_array_equal(
            ka.evaluation.ensemble_predict(
                probabilities, method="mean_probability", heads=heads
            ),
            got,
        )
    as_lists = ka.evaluation.ensemble_predict(probabilities.tolist())
    np.testing.assert_array_equal(
        as_lists, ka.evaluation.ensemble_predict(probabilities)
    )


def test_ensemble_bad_input():
    probabilities = random_probabilities()
    with pytest.raises(ValueError, match="Unknown ensemble method 'vote'"):
        ka.evaluation.ensemble_predict(probabilities, method="vote")
    with pytest.raises(ValueError, match="needs `weights`"):
        ka.evaluation.ensemble_predict(probabilities, method="weighted")
    with pytest.raises(ValueError, match="must be 5 non-negative numbers"):
        ka.evaluation.ensemble_predict(
            probabilities, method="weighted", weights=[1, 2]
        )
    with pytest.raises(ValueError, match="not all zero"):
        ka.evaluation.ensemble_predict(
            probabilities, method="weighted", weights=[0] * 5
        )
    with pytest.raises(ValueError, match="Unknown head 'head_0'"):
        ka.evaluation.ensemble_predict(probabilities, heads=["head_0"])
    with pytest.raises(ValueError, match="Unknown head 'head_0'"):
        ka.evaluation.ensemble_predict(probabilities, heads="head_0")
    with pytest.raises(ValueError, match="Head True is not a head name"):
        ka.evaluation.ensemble_predict(probabilities, heads=[True])
    with pytest.raises(ValueError, match="Head evaluation is for classifiers"):
        ka.evaluation.ensemble_predict(probabilities[:, 0])


def test_greedy_subset_stops_when_no_head_helps():
    probabilities = random_probabilities(n=200, heads=6, seed=3)
    labels = np.random.default_rng(4).integers(0, 4, size=200)

    def score(subset):
        mean = probabilities[:, subset].mean(1)
        picked = mean[np.arange(200), labels]
        return (mean.argmax(-1) == labels).mean(), -np.log(picked).mean()

    chosen = ensembles.greedy_subset(probabilities, labels, start=2)
    assert chosen[0] == 2 and len(set(chosen)) == len(chosen)
    for k in range(1, len(chosen)):
        accuracy, loss = score(chosen[: k + 1])
        before = score(chosen[:k])
        assert (accuracy, -loss) > (before[0], -before[1])
    final = score(chosen)
    for head in set(range(6)) - set(chosen):
        accuracy, loss = score(chosen + [head])
        assert (accuracy, -loss) <= (final[0], -final[1])


def test_mcnemar_is_the_exact_binomial_test():
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.8
    b = rng.random(300) < 0.7
    n_b, n_c, p = statistics.mcnemar_exact(a, b)
    assert n_b == int((a & ~b).sum()) and n_c == int((~a & b).sum())
    assert p == pytest.approx(stats.binomtest(n_b, n_b + n_c, 0.5).pvalue)
    assert statistics.mcnemar_exact(a, a) == (0, 0, 1.0)


def test_cochrans_q_with_two_classifiers_is_mcnemars_chi_square():
    rng = np.random.default_rng(1)
    correct = rng.random((400, 2)) < [0.8, 0.7]
    b, c, _ = statistics.mcnemar_exact(correct[:, 0], correct[:, 1])
    q, p, df = statistics.cochrans_q(correct)
    assert q == pytest.approx((b - c) ** 2 / (b + c)) and df == 1
    assert p == pytest.approx(stats.chi2.sf(q, 1))
    assert statistics.cochrans_q(np.ones((5, 3), bool)) == (0.0, 1.0, 2)


def test_holm_adjustment():
    np.testing.assert_allclose(
        statistics.holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5]
    )


def test_paired_bootstrap_interval():
    rng = np.random.default_rng(2)
    reference_correct = rng.random(500) < 0.7
    correct = np.stack([reference_correct, rng.random(500) < 0.9], axis=1)
    intervals = statistics.paired_bootstrap(correct, reference_correct)
    np.testing.assert_array_equal(intervals[0], [0.0, 0.0])
    low, high = intervals[1]
    difference = correct[:, 1].mean() - reference_correct.mean()
    assert low < difference < high
    # Close to the normal approximation of a paired difference.
    d = correct[:, 1].astype(float) - reference_correct
    half = 1.96 * d.std() / np.sqrt(500)
    assert high - low == pytest.approx(2 * half, rel=0.15)


def test_compare_runs_reproduces_the_reference_t_test():
    baseline = [78.44, 78.88, 78.71, 78.00, 79.02]
    head = [80.50, 80.72, 80.52, 80.33, 80.35]
    result = ka.evaluation.compare_runs(baseline, head)
    assert result.t_statistic == pytest.approx(-11.37, abs=0.005)
    assert result.t_p_value == pytest.approx(3.4e-4, abs=0.05e-4)
    assert result.significant and result.num_runs == 5
    assert result.baseline_mean == pytest.approx(78.61)
    assert result.baseline_std == pytest.approx(0.36, abs=0.005)
    assert result.model_std == pytest.approx(0.14, abs=0.005)
    assert result.wilcoxon_p_value == pytest.approx(0.0625)
    low, high = result.difference_interval
    assert low < result.mean_difference < high
    combined = [82.06, 82.60, 82.38, 81.97, 81.93]
    result = ka.evaluation.compare_runs(baseline, combined)
    assert result.t_statistic == pytest.approx(-20.16, abs=0.005)
    assert result.t_p_value == pytest.approx(3.6e-5, abs=0.05e-5)
    assert "paired t = -20.16" in str(result)
    assert result.to_dict()["num_runs"] == 5


def test_compare_runs_bad_input():
    with pytest.raises(ValueError, match="the same number of runs"):
        ka.evaluation.compare_runs([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="needs two finite scores"):
        ka.evaluation.compare_runs([1], [2])
    with pytest.raises(ValueError, match="`alpha` must be in"):
        ka.evaluation.compare_runs([1, 2], [2, 3], alpha=5)


def test_compare_runs_with_one_method_constant_over_seeds():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = ka.evaluation.compare_runs([0.9796, 0.98, 0.975], [0.9722] * 3)
    assert result.model_std == 0.0
    assert 0.0 < result.t_p_value < 1.0
    assert result.mean_difference == pytest.approx(0.9722 - 0.9782, abs=1e-9)


def test_compare_runs_effect_size_without_spread():
    same = ka.evaluation.compare_runs([0.9, 0.91, 0.92], [0.9, 0.91, 0.92])
    assert same.effect_size == 0.0 and same.t_p_value == 1.0
    # Binary fractions, so every difference is exactly 0.125.
    low, high = [0.5, 0.75, 0.25], [0.625, 0.875, 0.375]
    assert ka.evaluation.compare_runs(high, low).effect_size == -np.inf
    assert ka.evaluation.compare_runs(low, high).effect_size == np.inf
