"""Every bad input of docs/bad_input.md, with the error each one gets.

One test per group of the page; each case is one `pytest.param`, whose id
is the page's "Test" column (a test below checks the two agree). A case
is a function that makes the bad call; the test asserts the exception's
type and the first words of its message. Messages marked "Keras" on the
page are Keras's own: those cases fail when Keras changes them, so that
the page is corrected.
"""

import os
import re
import zipfile

import keras
import numpy as np
import pytest

import keras_andhra as ka
from keras_andhra import cli
from keras_andhra import layers
from keras_andhra import models

L = keras.layers
CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
DOCS = os.path.join(os.path.dirname(__file__), "..", "docs", "bad_input.md")
RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 6)).astype("float32")
Y = RNG.integers(0, 3, size=(32,))


def small_model(num_classes=3, compiled=True):
    """Four heads (two splits of two) of `num_classes` logits on 6 inputs."""
    inputs = keras.Input((6,))
    x = L.Dense(8)(inputs)
    branches = layers.AndhraSplit(2)(layers.AndhraSplit(2)(x))
    branches = layers.BranchBlock(L.Dense(num_classes))(branches)
    model = models.AndhraModel(inputs, layers.HeadCollector()(branches))
    if compiled:
        model.compile(optimizer="sgd", loss=CE, metrics=["accuracy"])
    return model


def one_head_model():
    inputs = keras.Input((6,))
    outputs = layers.HeadCollector()([L.Dense(3)(inputs)])
    model = models.AndhraModel(inputs, outputs)
    model.compile(loss=CE)
    return model


def unsplit_model():
    """Two heads, but no AndhraSplit: nothing for surgery to act on."""
    inputs = keras.Input((6,))
    outputs = layers.HeadCollector()([L.Dense(3)(inputs), L.Dense(3)(inputs)])
    return models.AndhraModel(inputs, outputs)


def no_collector_model():
    inputs = keras.Input((6,))
    return models.AndhraModel(inputs, L.Dense(3)(inputs))


def image_model():
    inputs = keras.Input((8, 8, 1))
    branches = layers.AndhraSplit(2)(L.Flatten()(inputs))
    branches = layers.BranchBlock(L.Dense(3))(branches)
    model = models.AndhraModel(inputs, layers.HeadCollector()(branches))
    model.compile(loss=CE)
    return model


def plain_model():
    inputs = keras.Input((6,))
    return keras.Model(inputs, L.Dense(3)(inputs))


def per_head_model():
    model = small_model(compiled=False)
    model.compile(loss=CE, head_labels="per_head")
    return model


def fit(model, x=X, y=Y, **kwargs):
    return model.fit(x, y, epochs=1, batch_size=32, verbose=0, **kwargs)


def with_nan(array, index=(0, 0), value=np.nan):
    array = array.copy()
    array[index] = value
    return array


def images(n=8, labels=None):
    x = RNG.integers(0, 255, size=(n, 8, 8, 1)).astype("uint8")
    y = np.arange(n) % 2 if labels is None else labels
    return x, y


def tf_dataset(x, y, batch_size=8):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


class NoBatches(keras.utils.PyDataset):
    def __len__(self):
        return 0

    def __getitem__(self, index):
        raise IndexError(index)


def check(attempt, error, match, *args):
    with pytest.raises(error, match=match):
        attempt(*args)


SHAPES = [
    pytest.param(
        lambda: fit(small_model(), X[:, :5]),
        ValueError,
        r"`x` does not fit the model's input: its examples have shape \(5,\)",
        id="fit_x_wrong_features",
    ),
    pytest.param(
        lambda: image_model().predict(np.zeros((4, 8, 8)), verbose=0),
        ValueError,
        r"`x` does not fit .* add the channel axis \(`x\[\.\.\., None\]`\)",
        id="predict_images_without_channel_axis",
    ),
    pytest.param(
        lambda: fit(small_model(), X, Y[:10]),
        ValueError,
        r"`x` and `y` must hold the same examples, one label per example: "
        "`x` has 32, `y` 10",
        id="fit_x_y_different_lengths",
    ),
    pytest.param(
        lambda: fit(small_model(), X, RNG.integers(0, 3, size=(32, 5))),
        ValueError,
        r"Labels of shape \(32, 5\) fit no head",
        id="fit_labels_fit_no_head",
    ),
    pytest.param(
        lambda: fit(small_model(4), X, RNG.integers(0, 4, size=(32, 4))),
        ValueError,
        r"Labels of shape \(32, 4\) fit both .*compile\(head_labels='shared'\)",
        id="fit_labels_shared_or_per_head",
    ),
    pytest.param(
        lambda: small_model().compile(loss=CE, head_weights=[1.0, 2.0]),
        ValueError,
        r"`head_weights` needs one weight per head \(4\)",
        id="compile_head_weights_count",
    ),
    pytest.param(
        lambda: models.abnet(0, width=2, num_levels=1, input_shape=(8, 8)),
        ValueError,
        r"`input_shape` must be \(height, width, channels\)",
        id="abnet_input_shape_without_channels",
    ),
    pytest.param(
        lambda: layers.HeadCollector()([keras.Input((3,)), keras.Input((4,))]),
        ValueError,
        "All heads collected by `HeadCollector` must have the same shape",
        id="collector_heads_of_different_shapes",
    ),
    pytest.param(
        lambda: layers.HeadCollector(head_names=["a", "b", "c"])(
            [keras.Input((3,)), keras.Input((3,))]
        ),
        ValueError,
        "`head_names` has 3 names but 2 heads",
        id="collector_head_names_count",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(
            small_model(), X, np.zeros((32, 2, 2)), verbose=0
        ),
        ValueError,
        r"`y` must be class indices \(n,\) or one-hot",
        id="rank_heads_labels_shape",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(small_model(), X, Y[:10], verbose=0),
        ValueError,
        "The test data has 32 inputs but 10 labels",
        id="rank_heads_labels_count",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(
            small_model(), X, Y, baseline=np.zeros(10, "int64"), verbose=0
        ),
        ValueError,
        "The baseline's predictions cover 10 examples, the test data 32",
        id="rank_heads_baseline_count",
    ),
    pytest.param(
        lambda: ka.evaluation.ensemble_predict(
            np.ones((2, 3, 3)), method="weighted", weights=[1.0, 1.0]
        ),
        ValueError,
        "`weights` must be 3 non-negative numbers",
        id="ensemble_weights_count",
    ),
    pytest.param(
        lambda: ka.evaluation.compare_runs([0.9, 0.8, 0.7], [0.9, 0.8]),
        ValueError,
        "`baseline_scores` and `model_scores` need one score per run",
        id="compare_runs_counts",
    ),
    pytest.param(
        lambda: ka.data.load_dataset((np.zeros((8, 5)), np.zeros(8, "int64"))),
        ValueError,
        r"The source's images must be `\(n, height, width, channels\)`",
        id="load_dataset_images_shape",
    ),
]

LABELS_AND_VALUES = [
    pytest.param(
        lambda: fit(small_model(), X, Y + 3),
        ValueError,
        r"Labels out of range: the heads have 3 classes, so `y` must hold "
        r"class indices 0 to 2",
        id="fit_labels_too_large",
    ),
    pytest.param(
        lambda: fit(small_model(), X, Y - 1),
        ValueError,
        "Labels out of range: the heads have 3 classes",
        id="fit_labels_negative",
    ),
    pytest.param(
        lambda: fit(small_model(), X, Y + 0.5),
        ValueError,
        "`y` must be whole class indices for a sparse categorical loss",
        id="fit_labels_fractional",
    ),
    pytest.param(
        lambda: fit(small_model(), X, with_nan(Y.astype("float32"), 0)),
        ValueError,
        "`y` holds NaN or infinite values",
        id="fit_labels_nan",
    ),
    pytest.param(
        lambda: fit(small_model(), validation_data=(X, Y + 3)),
        ValueError,
        r"Labels out of range: .* `validation_data\[1\]` must hold",
        id="fit_validation_labels_out_of_range",
    ),
    pytest.param(
        lambda: small_model().evaluate(X, Y + 3, verbose=0),
        ValueError,
        "Labels out of range: the heads have 3 classes",
        id="evaluate_labels_out_of_range",
    ),
    pytest.param(
        lambda: fit(
            small_model(),
            with_nan(X),
            callbacks=[keras.callbacks.TerminateOnNaN()],
        ),
        ValueError,
        "`x` holds NaN or infinite values, which make every loss NaN",
        id="fit_nan_inputs_under_terminate_on_nan",
    ),
    pytest.param(
        lambda: fit(
            small_model(), validation_data=(with_nan(X, value=np.inf), Y)
        ),
        ValueError,
        r"`validation_data\[0\]` holds NaN or infinite values",
        id="fit_infinite_validation_inputs",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(small_model(), X, Y + 3, verbose=0),
        ValueError,
        r"Labels out of range: the model has 3 classes \(0 to 2\); map the",
        id="rank_heads_labels_out_of_range",
    ),
    pytest.param(
        lambda: ka.data.load_dataset(images(labels=np.arange(8) - 1)),
        ValueError,
        "Labels out of range: the source's labels must be class indices",
        id="load_dataset_negative_labels",
    ),
    pytest.param(
        lambda: ka.data.load_dataset(
            (with_nan(images()[0].astype("float32"), (0, 0, 0, 0)), images()[1])
        ),
        ValueError,
        "The source's images hold NaN or infinite values",
        id="load_dataset_nan_images",
    ),
    pytest.param(
        lambda: ka.evaluation.compare_runs([0.9, np.nan], [0.9, 0.8]),
        ValueError,
        "`baseline_scores` needs two finite scores or more",
        id="compare_runs_nan_score",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(
            small_model(), X, Y, confidence=1.5, verbose=0
        ),
        ValueError,
        r"`confidence` must be in \(0, 1\)",
        id="rank_heads_confidence",
    ),
]

DTYPES_AND_TYPES = [
    pytest.param(
        lambda: fit(small_model(), np.full((32, 6), "a")),
        TypeError,
        "`x` must hold numbers",
        id="fit_text_inputs",
    ),
    pytest.param(
        lambda: fit(small_model(), X, np.array(["cat", "dog"] * 16)),
        TypeError,
        r"`y` must hold numbers .*class names to indices",
        id="fit_class_names_as_labels",
    ),
    pytest.param(
        lambda: layers.AndhraSplit(num_branches=2.0),
        TypeError,
        "`num_branches` must be a positive int",
        id="split_float_branches",
    ),
    pytest.param(
        lambda: layers.AndhraSplit(num_branches=True),
        TypeError,
        "`num_branches` must be a positive int",
        id="split_bool_branches",
    ),
    pytest.param(
        lambda: models.abnet(0, num_branches="2"),
        TypeError,
        "`num_branches` must be a positive int",
        id="abnet_text_branches",
    ),
    pytest.param(
        lambda: layers.HeadCollector(head_names="ab"),
        TypeError,
        "`head_names` must be a list of strings",
        id="collector_head_names_string",
    ),
    pytest.param(
        lambda: layers.BranchBlock(3),
        TypeError,
        "`block` must be a Keras layer",
        id="branch_block_not_a_layer",
    ),
    pytest.param(
        lambda: setattr(small_model(), "gradient_aggregator", "osgd"),
        TypeError,
        "`gradient_aggregator` must be a keras_andhra.gradients",
        id="aggregator_given_as_a_name",
    ),
    pytest.param(
        lambda: ka.gradients.OSGD(order="head_00"),
        TypeError,
        "`order` must be None or a list of head names or indices",
        id="osgd_order_a_string",
    ),
    pytest.param(
        lambda: ka.gradients.PCGrad(seed="0"),
        TypeError,
        "`seed` must be an int",
        id="pcgrad_text_seed",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(
            small_model(), X, Y, num_resamples=2.5, verbose=0
        ),
        ValueError,
        "`num_resamples` must be a positive int",
        id="rank_heads_float_resamples",
    ),
    pytest.param(
        lambda: ka.data.load_dataset(images(), dtype="int8"),
        ValueError,
        "`dtype` must be one of",
        id="load_dataset_dtype",
    ),
    pytest.param(
        lambda: ka.experiments.Recipe(
            name="r", epochs=2.5, batch_size=8, learning_rate=0.1
        ),
        ValueError,
        "`epochs` must be a positive int",
        id="recipe_float_epochs",
    ),
    pytest.param(
        lambda: ka.models.prune_to_active("model.keras"),
        TypeError,
        "`prune_to_active` takes a Keras model",
        id="prune_a_path",
    ),
]

EMPTY_DATA = [
    pytest.param(
        lambda: fit(small_model(), X[:0], Y[:0]),
        ValueError,
        r"`x` holds no examples: `fit` needs one example or more",
        id="fit_empty_arrays",
    ),
    pytest.param(
        lambda: small_model().fit(tf_dataset(X[:0], Y[:0]), verbose=0),
        ValueError,
        r"`x` holds no batches: `fit` needs one example or more",
        id="fit_empty_tf_dataset",
    ),
    pytest.param(
        lambda: small_model().fit(NoBatches(), verbose=0),
        ValueError,
        r"`x` holds no batches: `fit` needs one example or more",
        id="fit_empty_py_dataset",
    ),
    pytest.param(
        lambda: small_model().fit(
            (batch for batch in []), shuffle=False, verbose=0
        ),
        ValueError,
        "the generator must yield at least one batch",
        id="fit_empty_generator",
    ),
    pytest.param(
        lambda: fit(small_model(), validation_data=(X[:0], Y[:0])),
        ValueError,
        r"`validation_data\[0\]` holds no examples",
        id="fit_empty_validation_data",
    ),
    pytest.param(
        lambda: fit(small_model(), validation_data=tf_dataset(X[:0], Y[:0])),
        ValueError,
        "`validation_data` holds no batches",
        id="fit_empty_validation_dataset",
    ),
    pytest.param(
        lambda: small_model().evaluate(X[:0], Y[:0], verbose=0),
        ValueError,
        r"`x` holds no examples: `evaluate` needs one example or more",
        id="evaluate_empty_arrays",
    ),
    pytest.param(
        lambda: small_model().predict(X[:0], verbose=0),
        ValueError,
        r"`x` holds no examples: `predict` needs one example or more",
        id="predict_empty_arrays",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(
            small_model(), tf_dataset(X[:0], Y[:0]), verbose=0
        ),
        ValueError,
        "The test dataset yielded no batches: head evaluation needs one",
        id="rank_heads_empty_dataset",
    ),
    pytest.param(
        lambda: ka.evaluation.ensemble_predict(small_model(), X[:0]),
        ValueError,
        r"`x` holds no examples: `predict` needs one example or more",
        id="ensemble_predict_empty_arrays",
    ),
    pytest.param(
        lambda: ka.data.load_dataset(images(0)),
        ValueError,
        "The source is empty: it has no images. Pass one image or more",
        id="load_dataset_empty_arrays",
    ),
    pytest.param(
        lambda: ka.evaluation.compare_runs([0.9], [0.8]),
        ValueError,
        "`baseline_scores` needs two finite scores or more",
        id="compare_runs_one_run",
    ),
]

UNKNOWN_NAMES = [
    pytest.param(
        lambda: layers.AndhraSplit(activation="relux"),
        ValueError,
        "Unknown activation 'relux'. Use a Keras activation name",
        id="split_activation",
    ),
    pytest.param(
        lambda: models.abnet(0, activation="relux"),
        ValueError,
        "Unknown activation 'relux'",
        id="abnet_activation",
    ),
    pytest.param(
        lambda: layers.BranchBlock(L.Dense(2), execution="fast"),
        ValueError,
        "`execution` must be one of",
        id="branch_block_execution",
    ),
    pytest.param(
        lambda: small_model().compile(loss=CE, head_reduction="max"),
        ValueError,
        "`head_reduction` must be one of",
        id="compile_head_reduction",
    ),
    pytest.param(
        lambda: small_model().compile(loss=CE, head_labels="both"),
        ValueError,
        "`head_labels` must be one of",
        id="compile_head_labels",
    ),
    pytest.param(
        lambda: small_model().compile(loss="crossentropy"),
        ValueError,
        "Unknown loss 'crossentropy'. Use a Keras loss name",
        id="compile_loss_name",
    ),
    pytest.param(
        lambda: ka.evaluation.ensemble_predict(
            np.ones((2, 3, 3)), method="median"
        ),
        ValueError,
        "Unknown ensemble method 'median'",
        id="ensemble_method",
    ),
    pytest.param(
        lambda: ka.gradients.OSGD(projection="sometimes"),
        ValueError,
        "`projection` must be one of",
        id="osgd_projection",
    ),
    pytest.param(
        lambda: ka.gradients.PCGrad(granularity="layer"),
        ValueError,
        "`granularity` must be one of",
        id="pcgrad_granularity",
    ),
    pytest.param(
        lambda: ka.callbacks.OrthogonalGradients(metric_mode="up"),
        ValueError,
        "`metric_mode` must be one of",
        id="orthogonal_gradients_metric_mode",
    ),
    pytest.param(
        lambda: ka.callbacks.BestHeadCheckpoint(mode="best"),
        ValueError,
        "`mode` must be 'auto', 'min' or 'max'",
        id="checkpoint_mode",
    ),
    pytest.param(
        lambda: ka.experiments.build_model("abnet-x", 10, (8, 8, 1)),
        ValueError,
        "Unknown model 'abnet-x'. Models: baseline",
        id="experiments_model_name",
    ),
    pytest.param(
        lambda: ka.experiments.Recipe(
            name="r",
            epochs=1,
            batch_size=8,
            learning_rate=0.1,
            schedule="linear",
        ),
        ValueError,
        "`schedule` must be one of",
        id="recipe_schedule",
    ),
    pytest.param(
        lambda: ka.data.load_dataset(os.path.join("no", "such", "folder")),
        ValueError,
        "No directory",
        id="load_dataset_missing_folder",
    ),
    pytest.param(
        lambda: ka.data.load_dataset(images(), augmentation="flip"),
        ValueError,
        "`augmentation` must be 'auto', None or a",
        id="load_dataset_augmentation",
    ),
    pytest.param(
        lambda: fit(
            small_model(),
            callbacks=[ka.callbacks.DynamicGrowth(layers=["hidden"])],
        ),
        ValueError,
        "DynamicGrowth: 'hidden' is not a size-gated layer of this model",
        id="dynamic_growth_layer",
    ),
]

HEADS = [
    pytest.param(
        lambda: ka.evaluation.extract_head(small_model(), "head_9"),
        ValueError,
        "Unknown head 'head_9'",
        id="extract_unknown_head",
    ),
    pytest.param(
        lambda: ka.evaluation.extract_head(small_model(), 7),
        ValueError,
        "Head index 7 is out of range for 4 heads",
        id="extract_head_index",
    ),
    pytest.param(
        lambda: fit(
            small_model(),
            callbacks=[ka.callbacks.OrthogonalGradients(order=["head_99"])],
        ),
        ValueError,
        r"Unknown head 'head_99'.* Received: order=",
        id="orthogonal_gradients_unknown_head",
    ),
    pytest.param(
        lambda: fit(
            small_model(),
            callbacks=[ka.callbacks.OrthogonalGradients(order=[0, 0])],
        ),
        ValueError,
        "Head 0 is listed twice in `order`",
        id="orthogonal_gradients_head_twice",
    ),
    pytest.param(
        lambda: ka.evaluation.ensemble_predict(
            small_model(), X, heads=["head_00", "nope"]
        ),
        ValueError,
        "Unknown head 'nope'",
        id="ensemble_unknown_head",
    ),
    pytest.param(
        lambda: ka.evaluation.ensemble_predict(small_model(), X, heads=[]),
        ValueError,
        "`heads` must name at least one head",
        id="ensemble_no_heads",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(one_head_model(), X, Y, verbose=0),
        ValueError,
        "Ranking and ensembling heads needs a model with two heads or more",
        id="rank_heads_one_head",
    ),
    pytest.param(
        lambda: setattr(
            one_head_model(), "gradient_aggregator", ka.gradients.OSGD()
        ),
        ValueError,
        "OSGD works between heads; this model has one",
        id="aggregator_one_head",
    ),
    pytest.param(
        lambda: no_collector_model().num_heads,
        ValueError,
        "An AndhraModel needs a `HeadCollector` layer",
        id="model_without_collector",
    ),
    pytest.param(
        lambda: ka.evaluation.extract_head(plain_model(), 0),
        ValueError,
        "This needs an ANDHRA model",
        id="extract_head_of_plain_model",
    ),
]

CONTRADICTIONS = [
    pytest.param(
        lambda: small_model().compile(loss=CE, loss_weights=[1.0] * 4),
        ValueError,
        "`AndhraModel` weights its heads with `head_weights`",
        id="compile_loss_weights",
    ),
    pytest.param(
        lambda: small_model(compiled=False).compile(optimizer="sgd"),
        ValueError,
        "`AndhraModel.compile` needs a `loss`",
        id="compile_without_loss",
    ),
    pytest.param(
        lambda: small_model().compile(loss=[CE, CE]),
        ValueError,
        "`AndhraModel` applies one loss to every head",
        id="compile_loss_per_head",
    ),
    pytest.param(
        lambda: small_model().compile(
            loss=keras.losses.SparseCategoricalCrossentropy(reduction=None)
        ),
        ValueError,
        "The heads' losses are reduced to one number per head",
        id="compile_loss_without_reduction",
    ),
    pytest.param(
        lambda: fit(per_head_model()),
        ValueError,
        r"Labels of shape \(32,\) fit no head",
        id="per_head_labels_given_shared",
    ),
    pytest.param(
        lambda: ka.evaluation.ensemble_predict(
            np.ones((2, 3, 3)), method="weighted"
        ),
        ValueError,
        "`method='weighted'` needs `weights`",
        id="ensemble_weighted_without_weights",
    ),
    pytest.param(
        lambda: layers.SizeGatedDense(8, penalty=0.1),
        ValueError,
        "A size penalty needs a `target` size",
        id="size_penalty_without_target",
    ),
    pytest.param(
        lambda: setattr(
            unsplit_model(),
            "gradient_aggregator",
            ka.gradients.OSGD(granularity="representation"),
        ),
        ValueError,
        "Representation-level surgery works on the gradients",
        id="representation_surgery_without_splits",
    ),
    pytest.param(
        lambda: ka.gradients.OSGD(projection="conflicting", mode="always"),
        TypeError,
        "`mode` is the deprecated name of `projection`: give one",
        id="osgd_projection_and_its_old_name",
        # The old keyword's DeprecationWarning comes before the TypeError.
        marks=pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    ),
    pytest.param(
        lambda: ka.callbacks.BestHeadCheckpoint(filepath="best.h5"),
        ValueError,
        "`filepath` must end in '.keras'",
        id="checkpoint_h5_path",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(
            small_model(), tf_dataset(X, Y), Y, verbose=0
        ),
        ValueError,
        "Give the test labels inside the dataset, not as `y`",
        id="rank_heads_dataset_and_labels",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(
            small_model(),
            X,
            Y,
            validation_data=(X, Y, np.ones(32), None),
            verbose=0,
        ),
        ValueError,
        r"`validation_data` must be `\(x_val, y_val\)`",
        id="rank_heads_validation_of_four",
    ),
    pytest.param(
        lambda: ka.evaluation.rank_heads(
            small_model(), X, Y, validation_data=(X, Y, np.ones(32)), verbose=0
        ),
        ValueError,
        "The validation data carries sample weights",
        id="rank_heads_validation_sample_weights",
    ),
    pytest.param(
        lambda: models.abnet(0, num_levels=5),
        ValueError,
        "`num_levels` must be an int from 0 to 3",
        id="abnet_num_levels",
    ),
    pytest.param(
        lambda: models.abnet(0, split_after=(True, False)),
        ValueError,
        "`split_after` must be 3 bools",
        id="abnet_split_after_length",
    ),
    pytest.param(
        lambda: ka.callbacks.DynamicGrowth(growth=1.0),
        ValueError,
        "`growth` must be a number above 1",
        id="dynamic_growth_factor",
    ),
]


def lambda_file(folder):
    """A model whose Lambda layer, if its code ever ran, writes a file."""
    marker = os.path.join(folder, "code_ran")
    touch = eval(f"lambda x: (open({marker!r}, 'w').close(), x)[1]")
    inputs = keras.Input((6,))
    model = keras.Model(inputs, L.Lambda(touch)(inputs))
    path = os.path.join(folder, "lambda.keras")
    model.save(path)
    if os.path.exists(marker):  # Building the model ran it once.
        os.remove(marker)
    return path, marker


@keras.saving.register_keras_serializable(package="bad_input_test")
class Unregistered(L.Layer):
    """Saved while registered, loaded after it is forgotten."""

    def call(self, x):
        return x


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files")
    paths = {"folder": str(folder)}
    text = folder / "notes.keras"
    text.write_text("not a model")
    paths["text_keras"] = str(text)
    h5 = folder / "notes.h5"
    h5.write_text("not a model")
    paths["text_h5"] = str(h5)
    paths["txt"] = str(folder / "model.txt")
    saved = folder / "plain.keras"
    plain_model().save(saved)
    paths["plain"] = str(saved)
    raw = saved.read_bytes()
    truncated = folder / "truncated.keras"
    truncated.write_bytes(raw[: len(raw) // 2])
    paths["truncated"] = str(truncated)
    foreign = folder / "photos.keras"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("photo.txt", "a zip archive, not a model")
    paths["foreign"] = str(foreign)
    paths["missing"] = str(folder / "missing.keras")
    inputs = keras.Input((6,))
    unknown = folder / "unknown.keras"
    keras.Model(inputs, Unregistered()(inputs)).save(unknown)
    paths["unknown"] = str(unknown)
    return paths


def rank_command(*arguments):
    cli.main(["rank", *arguments])


def load_unregistered(path):
    objects = keras.saving.get_custom_objects()
    saved = objects.pop("bad_input_test>Unregistered")
    try:
        keras.saving.load_model(path, safe_mode=True)
    finally:
        objects["bad_input_test>Unregistered"] = saved


FILES = [
    pytest.param(
        lambda f: rank_command(f["missing"]),
        SystemExit,
        r"No file .*missing\.keras.*: `saved_model` must be a model saved",
        id="rank_missing_file",
    ),
    pytest.param(
        lambda f: rank_command(f["text_keras"]),
        SystemExit,
        "is not a `.keras` model file: a `.keras` file is a zip archive",
        id="rank_keras_file_not_a_zip",
    ),
    pytest.param(
        lambda f: rank_command(f["truncated"]),
        SystemExit,
        r"is not a `\.keras` model file: .*it may be truncated",
        id="rank_truncated_keras_file",
    ),
    pytest.param(
        lambda f: rank_command(f["foreign"]),
        SystemExit,
        "is a zip archive but not a Keras model: it has no config.json",
        id="rank_foreign_zip",
    ),
    pytest.param(
        lambda f: rank_command(f["text_h5"]),
        SystemExit,
        r"is not an HDF5 file, as a legacy `\.h5` model is",
        id="rank_h5_file_not_hdf5",
    ),
    pytest.param(
        lambda f: rank_command(f["plain"], "--baseline", f["text_keras"]),
        SystemExit,
        r"is not a `\.keras` model file: .* Received: --baseline=",
        id="rank_baseline_not_a_zip",
    ),
    pytest.param(
        lambda f: ka.evaluation.rank_heads(
            keras.saving.load_model(f["plain"]), X, Y, verbose=0
        ),
        ValueError,
        "This needs an ANDHRA model: a functional model whose output",
        id="rank_heads_of_a_plain_keras_file",
    ),
    pytest.param(
        lambda f: keras.saving.load_model(f["text_keras"]),
        ValueError,
        "File not found: filepath=",
        id="load_model_keras_file_not_a_zip",
    ),
    pytest.param(
        lambda f: keras.saving.load_model(f["truncated"]),
        ValueError,
        "File not found: filepath=",
        id="load_model_truncated_keras_file",
    ),
    pytest.param(
        lambda f: keras.saving.load_model(f["foreign"]),
        KeyError,
        "There is no item named 'config.json' in the archive",
        id="load_model_foreign_zip",
    ),
    pytest.param(
        lambda f: keras.saving.load_model(f["text_h5"]),
        OSError,
        "file signature not found",
        id="load_model_h5_file_not_hdf5",
    ),
    pytest.param(
        lambda f: keras.saving.load_model(f["txt"]),
        ValueError,
        "File format not supported: filepath=",
        id="load_model_unknown_extension",
    ),
    pytest.param(
        lambda f: load_unregistered(f["unknown"]),
        TypeError,
        "Could not locate class 'Unregistered'",
        id="load_model_unknown_class",
    ),
]


@pytest.mark.parametrize("attempt, error, match", SHAPES)
def test_shapes(attempt, error, match):
    check(attempt, error, match)


@pytest.mark.parametrize("attempt, error, match", LABELS_AND_VALUES)
def test_label_ranges_and_values(attempt, error, match):
    check(attempt, error, match)


@pytest.mark.parametrize("attempt, error, match", DTYPES_AND_TYPES)
def test_dtypes_and_types(attempt, error, match):
    check(attempt, error, match)


@pytest.mark.parametrize("attempt, error, match", EMPTY_DATA)
def test_empty_data(attempt, error, match):
    check(attempt, error, match)


@pytest.mark.parametrize("attempt, error, match", UNKNOWN_NAMES)
def test_unknown_names(attempt, error, match):
    check(attempt, error, match)


@pytest.mark.parametrize("attempt, error, match", HEADS)
def test_heads_that_do_not_exist(attempt, error, match):
    check(attempt, error, match)


@pytest.mark.parametrize("attempt, error, match", CONTRADICTIONS)
def test_contradictory_options(attempt, error, match):
    check(attempt, error, match)


@pytest.mark.parametrize("attempt, error, match", FILES)
def test_corrupt_and_foreign_files(attempt, error, match, files):
    check(attempt, error, match, files)


def test_lambda_file_in_safe_mode_runs_no_code(tmp_path):
    path, marker = lambda_file(str(tmp_path))
    with pytest.raises(ValueError, match="Requested the deserialization of"):
        keras.saving.load_model(path, safe_mode=True)
    assert not os.path.exists(marker)
    # The marker works: unsafe loading rebuilds the model, running the code.
    keras.saving.load_model(path, safe_mode=False)
    assert os.path.exists(marker)


def test_the_checks_let_good_data_through():
    # Labels equal to the loss's ignored class are not out of range; an
    # infinite or unknown-size dataset is left to Keras; NaN is refused in
    # training only.
    model = small_model()
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=-1
        ),
    )
    y = Y.copy()
    y[:4] = -1
    history = fit(model, X, y, validation_data=(X, y))
    assert np.isfinite(history.history["val_loss"]).all()

    def batches():
        while True:
            yield X[:8], Y[:8]

    history = model.fit(batches(), steps_per_epoch=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 1
    assert np.isnan(model.predict(with_nan(X), verbose=0)[0]).all()


GROUPS = {
    "Shapes": SHAPES,
    "Label ranges and values": LABELS_AND_VALUES,
    "Dtypes and types": DTYPES_AND_TYPES,
    "Empty data": EMPTY_DATA,
    "Unknown names": UNKNOWN_NAMES,
    "Heads that do not exist": HEADS,
    "Contradictory options": CONTRADICTIONS,
    "Corrupt and foreign files": FILES,
}


def test_the_page_lists_every_case():
    with open(DOCS) as f:
        page = f.read()
    listed = re.findall(r"^\|[^|]*\|[^|]*\| `([a-z0-9_]+)` \|$", page, re.M)
    cases = [case.id for group in GROUPS.values() for case in group]
    cases.append("lambda_file_in_safe_mode_runs_no_code")
    assert sorted(listed) == sorted(cases)
    count = re.search(r"(\d+) bad inputs", page)
    assert count is not None and int(count.group(1)) == len(cases)
    for title in GROUPS:
        assert f"## {title}" in page
