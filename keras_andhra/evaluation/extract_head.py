import keras

from keras_andhra.models import head_paths


def extract_head(model, head, name=None):
    """Returns one head of an ANDHRA network as a standalone Keras model.

    Every head of an ANDHRA network is an ordinary network: the trunk, its
    branch's activation at every split and its branch's copy of every
    `BranchBlock`. `extract_head` rebuilds that path from fresh standard
    Keras layers (nested blocks are unrolled layer by layer), copies the
    weights, and returns a plain functional `keras.Model`. It shares no
    variables with `model` and gives the head's output for the same input.
    When the path holds only Keras's own layers, as `abnet` heads do, it
    needs nothing from keras_andhra to run or to load; other layers on the
    path (your own, or keras_andhra's size-gated layers) are cloned as
    they are, and loading needs their package. How the blocks
    execute (loop or stacked) does not matter: the copies hold the weights.

    For `abnet(...)` the extracted head has exactly the parameters of
    `baseline_resnet(...)` built with the same arguments, so it is the
    model to ship once `rank_heads` has picked a head.

    Args:
        model: An ANDHRA model (its output comes from a `HeadCollector`).
        head: A head name from `model.head_names` or an int index.
        name: Name of the new model; by default `"<model name>_<head>"`.

    Returns:
        A functional `keras.Model` with the model's inputs and the head's
        output (`(batch, num_classes)` for `abnet`).

    Example:

    ```python
    import numpy as np
    import keras_andhra as ka

    model = ka.models.abnet(0, width=4, num_levels=1, input_shape=(8, 8, 1))
    head = ka.evaluation.extract_head(model, "head_1")
    x = np.random.rand(2, 8, 8, 1).astype("float32")
    np.abs(head.predict(x, verbose=0) - model.predict(x, verbose=0)[:, 1]).max()
    ```
    """
    index = head_paths.head_index(model, head)
    head_name = head_paths.collector_of(model).head_names[index]
    inputs = [
        keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name)
        for t in model.inputs
    ]
    used_names = {t.name for t in inputs}
    clones = {}

    def visit(layer, args, kwargs):
        # One clone per original layer: a layer used twice on the path
        # stays shared in the extracted model.
        if id(layer) not in clones:
            config = layer.get_config()
            config["name"] = _unique(layer.name, used_names)
            clones[id(layer)] = (layer, layer.__class__.from_config(config))
        return clones[id(layer)][1](*args, **kwargs)

    output = head_paths.walk_head(model, index, inputs, visit)
    extracted = keras.Model(
        inputs[0] if len(inputs) == 1 else inputs,
        output,
        name=name or f"{model.name}_{head_name}",
    )
    for original, clone in clones.values():
        clone.set_weights(original.get_weights())
    return extracted


def _unique(name, used):
    candidate, suffix = name, 1
    while candidate in used:
        candidate = f"{name}_{suffix}"
        suffix += 1
    used.add(candidate)
    return candidate
