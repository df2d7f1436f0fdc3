import json
import sys

import keras
import numpy as np
import pytest
from scipy import stats

import keras_andhra as ka
from keras_andhra.evaluation import statistics

SHAPE = (8, 8, 1)


@pytest.fixture(scope="module")
def digits():
    (x_train, y_train), (x_test, y_test) = ka.data.load_digits()
    return x_train[:120], y_train[:120], x_test[:150], y_test[:150]


@pytest.fixture(scope="module")
def model():
    model = ka.models.abnet(0, width=4, num_levels=2, input_shape=SHAPE)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


@pytest.fixture(scope="module")
def baseline():
    return ka.models.baseline_resnet(0, width=4, input_shape=SHAPE)


def log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def wilson(k, n, z=1.959964):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_report_matches_numpy_and_selects_on_validation(model, digits):
    x_val, y_val, x_test, y_test = digits
    report = ka.evaluation.rank_heads(
        model, x_test, y_test, validation_data=(x_val, y_val), verbose=0
    )
    logits = model.predict(x_test, verbose=0)
    log_p = log_softmax(logits.astype("float64"))
    correct = logits.argmax(-1) == y_test[:, None]
    np.testing.assert_allclose(report.accuracy, correct.mean(0))
    picked = np.take_along_axis(log_p, y_test[:, None, None], -1)[..., 0]
    np.testing.assert_allclose(report.loss, -picked.mean(0), rtol=1e-6)
    top5 = np.argsort(-logits, -1, kind="stable")[..., :5]
    np.testing.assert_allclose(
        report.top5_accuracy, (top5 == y_test[:, None, None]).any(-1).mean(0)
    )
    for i, (low, high) in enumerate(report.accuracy_interval):
        assert (low, high) == pytest.approx(wilson(correct[:, i].sum(), 150))
        assert low <= report.accuracy[i] <= high
    val_logits = model.predict(x_val, verbose=0)
    val_acc = (val_logits.argmax(-1) == y_val[:, None]).mean(0)
    val_loss = -np.take_along_axis(
        log_softmax(val_logits.astype("float64")), y_val[:, None, None], -1
    )[..., 0].mean(0)
    best = np.lexsort((val_loss, -val_acc))[0]
    assert report.best_head == model.head_names[best]
    assert report.selection == "validation"
    assert report.num_examples == 150 and report.num_validation_examples == 120
    assert not any("optimistic" in note for note in report.notes)
    assert (
        list(report.parameters)
        == [
            ka.models.baseline_resnet(
                0, width=4, input_shape=SHAPE
            ).count_params()
        ]
        * 4
    )


def test_one_forward_pass_per_data_set(model, digits, monkeypatch):
    x_val, y_val, x_test, y_test = digits
    calls = []
    predict = model.predict

    def counting_predict(x, **kwargs):
        calls.append(len(x))
        return predict(x, **kwargs)

    monkeypatch.setattr(model, "predict", counting_predict)
    report = ka.evaluation.rank_heads(model, x_test, y_test, verbose=0)
    assert calls == [150]
    assert report.selection == "test"
    assert any("optimistic" in note for note in report.notes)
    ka.evaluation.rank_heads(
        model, x_test, y_test, validation_data=(x_val, y_val), verbose=0
    )
    assert calls == [150, 150, 120]


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]


def test_datasets_keep_every_example(model, digits):
    _, _, x_test, y_test = digits
    expected = ka.evaluation.rank_heads(model, x_test, y_test, verbose=0)

    def generator():
        for start in range(0, 150, 32):  # the last batch has 22 examples
            yield x_test[start : start + 32], y_test[start : start + 32]

    datasets = [generator(), Batches(x_test, y_test, 32)]
    try:
        import tensorflow as tf
    except ImportError:
        pass
    else:
        datasets.append(
            tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(32)
        )
    for dataset in datasets:
        report = ka.evaluation.rank_heads(model, dataset, verbose=0)
        assert report.num_examples == 150
        np.testing.assert_allclose(report.accuracy, expected.accuracy)
        np.testing.assert_allclose(report.loss, expected.loss, rtol=1e-5)


class CountedBatches(Batches):
    """A PyDataset that gives `num_batches` (Keras's newer API), no len."""

    __len__ = None

    def __init__(self, x, y, batch_size, infinite=False):
        super().__init__(x, y, batch_size)
        self.infinite = infinite

    @property
    def num_batches(self):
        return None if self.infinite else -(-len(self.x) // self.batch_size)


def test_num_batches_datasets_and_validation_lists(model, digits):
    x_val, y_val, x_test, y_test = digits
    expected = ka.evaluation.rank_heads(
        model, x_test, y_test, validation_data=(x_val, y_val), verbose=0
    )
    report = ka.evaluation.rank_heads(
        model,
        CountedBatches(x_test, y_test, 32),
        validation_data=[x_val, y_val],
        verbose=0,
    )
    assert report.num_examples == 150 and report.num_validation_examples == 120
    np.testing.assert_allclose(report.accuracy, expected.accuracy)
    assert report.best_head == expected.best_head
    infinite = [CountedBatches(x_test, y_test, 32, infinite=True)]
    try:
        import tensorflow as tf
    except ImportError:
        pass
    else:
        infinite.append(
            tf.data.Dataset.from_tensor_slices((x_test, y_test))
            .batch(32)
            .repeat()
        )
    for dataset in infinite:
        with pytest.raises(ValueError, match="test dataset is infinite"):
            ka.evaluation.rank_heads(model, dataset, verbose=0)


def test_baseline_significance_and_ensembles(model, baseline, digits):
    x_val, y_val, x_test, y_test = digits
    report = ka.evaluation.rank_heads(
        model,
        x_test,
        y_test,
        validation_data=(x_val, y_val),
        baseline=baseline,
        verbose=0,
    )
    heads = model.predict(x_test, verbose=0)
    base = baseline.predict(x_test, verbose=0).argmax(-1) == y_test
    correct = heads.argmax(-1) == y_test[:, None]
    p_values = []
    for i, name in enumerate(model.head_names):
        entry = report.significance[name]
        b = int((correct[:, i] & ~base).sum())
        c = int((~correct[:, i] & base).sum())
        assert (entry["b"], entry["c"]) == (b, c)
        expected = stats.binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
        assert entry["p_value"] == pytest.approx(expected)
        p_values.append(expected)
        difference = correct[:, i].mean() - base.mean()
        assert entry["difference"] == pytest.approx(difference)
        low, high = entry["difference_interval"]
        assert low <= difference <= high
    holm = [entry["p_holm"] for entry in report.significance.values()]
    np.testing.assert_allclose(holm, statistics.holm(p_values))
    assert report.baseline["accuracy"] == pytest.approx(base.mean())
    assert report.baseline["parameters"] == baseline.count_params()
    for method in ("majority", "mean_probability", "borda"):
        predicted = ka.evaluation.ensemble_predict(
            model, x_test, method=method, verbose=0
        )
        assert report.ensembles[method]["accuracy"] == pytest.approx(
            (predicted == y_test).mean()
        )
    weighted = ka.evaluation.ensemble_predict(
        heads, method="weighted", weights=report.validation_accuracy
    )
    assert report.ensembles["weighted"]["accuracy"] == pytest.approx(
        (weighted == y_test).mean()
    )
    assert report.subset["heads"][0] == report.best_head
    # The same test against the baseline's predictions instead of the model.
    as_classes = ka.evaluation.rank_heads(
        model,
        x_test,
        y_test,
        baseline=baseline.predict(x_test, verbose=0).argmax(-1),
        verbose=0,
    )
    assert as_classes.significance == report.significance
    assert as_classes.baseline["name"] == "predictions"


def test_report_prints_converts_and_plots(model, baseline, digits, tmp_path):
    x_val, y_val, x_test, y_test = digits
    report = ka.evaluation.rank_heads(
        model,
        x_test,
        y_test,
        validation_data=(x_val, y_val),
        baseline=baseline,
        verbose=0,
    )
    text = str(report)
    for name in model.head_names:
        assert name in text
    assert "<- best (validation)" in text and "Cochran's Q" in text
    assert "majority vote" in text and "Baseline bs_1g_r0" in text
    data = json.loads(report.to_json(tmp_path / "report.json"))
    assert json.loads((tmp_path / "report.json").read_text()) == data
    again = ka.evaluation.HeadReport.from_dict(data)
    assert str(again) == text and repr(again) == repr(report)
    figure = report.plot(tmp_path / "report.png")
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert len(figure.axes) == 1


def test_plot_without_matplotlib_says_how_to_get_it(model, digits, monkeypatch):
    _, _, x_test, y_test = digits
    report = ka.evaluation.rank_heads(model, x_test, y_test, verbose=0)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="needs matplotlib: `pip install"):
        report.plot()


def test_bad_input(model, digits):
    _, _, x_test, y_test = digits
    one_head = ka.models.abnet(0, width=2, num_levels=0, input_shape=SHAPE)
    with pytest.raises(ValueError, match="needs a model with two heads"):
        ka.evaluation.rank_heads(one_head, x_test, y_test, verbose=0)
    with pytest.raises(ValueError, match="Labels out of range"):
        ka.evaluation.rank_heads(model, x_test, y_test + 5, verbose=0)
    with pytest.raises(ValueError, match="has 150 inputs but 149 labels"):
        ka.evaluation.rank_heads(model, x_test, y_test[:-1], verbose=0)
    with pytest.raises(ValueError, match="labels are missing"):
        ka.evaluation.rank_heads(model, x_test, verbose=0)
    with pytest.raises(ValueError, match="baseline's predictions cover 10"):
        ka.evaluation.rank_heads(
            model, x_test, y_test, baseline=np.zeros(10), verbose=0
        )
    with pytest.raises(ValueError, match="baseline predictions` must be whole"):
        ka.evaluation.rank_heads(
            model, x_test, y_test, baseline=np.full(150, 0.7), verbose=0
        )
    with pytest.raises(ValueError, match="Labels out of range"):
        ka.evaluation.rank_heads(
            model, x_test, y_test, baseline=np.full(150, 42), verbose=0
        )
    with pytest.raises(ValueError, match="several heads.*extract_head"):
        ka.evaluation.rank_heads(
            model, x_test, y_test, baseline=model, verbose=0
        )
    weights = np.ones(150)
    with pytest.raises(ValueError, match="validation data carries sample"):
        ka.evaluation.rank_heads(
            model,
            x_test,
            y_test,
            validation_data=(x_test, y_test, weights),
            verbose=0,
        )
    with pytest.raises(ValueError, match="test data carries sample weights"):
        ka.evaluation.rank_heads(
            model, iter([(x_test, y_test, weights)]), verbose=0
        )
    with pytest.raises(ValueError, match="`num_resamples` must be a positive"):
        ka.evaluation.rank_heads(model, x_test, y_test, num_resamples=0)
    with pytest.raises(ValueError, match="`confidence` must be in"):
        ka.evaluation.rank_heads(model, x_test, y_test, confidence=95)
    with pytest.raises(ValueError, match="must yield \\(inputs, labels\\)"):
        ka.evaluation.rank_heads(model, iter([x_test]), verbose=0)
