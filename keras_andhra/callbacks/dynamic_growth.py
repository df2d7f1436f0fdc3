import math

import keras

from keras_andhra.growth import sites
from keras_andhra.growth import widening
from keras_andhra.utils import arguments


class DynamicGrowth(keras.callbacks.Callback):
    """Grows size-gated layers during `fit`: logs, schedules, widens.

    Size-gated layers (`SizeGatedDense`, `SizeGatedConv2D`) grow within
    their capacity by themselves: their size is a trainable weight, pulled
    by the size loss `penalty * (size - target)**2`. This callback adds
    what a layer cannot do alone:

    * **logs** every gated layer's size after each epoch, under
      `<layer path>_size` (and its capacity under `<layer path>_capacity`),
      so `history.history` shows the network grow;
    * **schedules** the size loss: `penalty` and `target` can change from
      epoch to epoch (without retracing: they are variables);
    * **widens** a layer physically when its size comes within `grow_at`
      units of its capacity: bigger variables with the old weights copied,
      new units entering with gate 0 (the network computes exactly what it
      did), the layers that read it widened to match, the optimizer's
      state carried over (old units' moments kept, new ones where the
      optimizer starts every variable: zero moments, Adagrad's initial
      accumulator, `use_ema` averages at the units' values; the iteration
      count and weight-decay exclusions kept) and the train function
      rebuilt, all inside the one `fit` call, on every backend. A layer
      inside a `BranchBlock` copy widens in every copy.

    Widening happens at the end of an epoch. Each event is recorded in
    `events` with its wall time. Between a gated layer and the layer that
    reads it, only per-channel layers that keep a zero channel zero may
    stand (normalisation, ReLU-family and tanh activations, pooling,
    dropout); anything else is refused when training begins.

    Weights saved before a widening have the old shapes: callbacks that
    restore such copies (`EarlyStopping(restore_best_weights=True)`,
    `BackupAndRestore`, weight-only checkpoints) cannot load them into the
    grown model. `ModelCheckpoint` of whole `.keras` models works: the
    saved config carries the current widths.

    Args:
        penalty: The size loss's weight for every watched layer: `None`
            (keep the layers' own), a number, or a function of the epoch
            (0-based) returning one.
        target: The size loss's target, likewise.
        grow_at: Widen a layer once `capacity - size <= grow_at`; `None`
            never widens.
        growth: Factor of the capacity at each widening (above 1).
        max_capacity: Largest capacity to widen to, or `None`.
        layers: Names of the gated layers to watch, or `None` for all.
        verbose: 1 prints a line per widening.

    Attributes:
        events: `(epoch, layer key, old capacity, new capacity, seconds)`
            of every widening.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_andhra as ka

    model = keras.Sequential([
        keras.Input((1,)),
        ka.layers.SizeGatedDense(2, activation="tanh", size=1.5,
                                 target=6.0, penalty=1.0, name="hidden"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = np.linspace(-1, 1, 32).reshape(-1, 1).astype("float32")
    growth = ka.callbacks.DynamicGrowth(grow_at=0.5)
    history = model.fit(x, np.sin(3 * x), epochs=6, callbacks=[growth],
                        verbose=0)
    history.history["hidden_size"], growth.events  # sizes; widenings
    ```

    Reference:
        Radhakrishnan, Lindner, Miller, Sinha and Ditto, "When less is
        more: evolving large neural networks from small ones",
        arXiv:2501.18012 (2025).
    """

    def __init__(
        self,
        penalty=None,
        target=None,
        grow_at=1.0,
        growth=2.0,
        max_capacity=None,
        layers=None,
        verbose=0,
    ):
        super().__init__()
        for name, value in (("penalty", penalty), ("target", target)):
            if value is not None and not callable(value):
                _check_non_negative(name, value)
        if grow_at is not None:
            _check_non_negative("grow_at", grow_at)
        if not isinstance(growth, (int, float)) or growth <= 1:
            raise ValueError(
                "`growth` must be a number above 1, the factor of the "
                f"capacity at each widening. Received: growth={growth!r}"
            )
        if max_capacity is not None and (
            not isinstance(max_capacity, int) or max_capacity < 1
        ):
            raise ValueError(
                "`max_capacity` must be a positive int or None. Received: "
                f"max_capacity={max_capacity!r}"
            )
        if isinstance(layers, str):
            layers = [layers]
        self.penalty = penalty
        self.target = target
        self.grow_at = grow_at
        self.growth = float(growth)
        self.max_capacity = max_capacity
        self.layers = None if layers is None else list(layers)
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        groups = sites.gated_sites(self.model)
        if self.layers is not None:
            names = {site.layer.name for group in groups for site in group}
            unknown = [name for name in self.layers if name not in names]
            if unknown:
                raise ValueError(
                    f"DynamicGrowth: {unknown[0]!r} is not a size-gated "
                    "layer of this model, so it cannot grow; growth works "
                    "on SizeGatedDense and SizeGatedConv2D layers. The "
                    f"model's gated layers are: {sorted(names) or 'none'}."
                )
            groups = [g for g in groups if g[0].layer.name in self.layers]
        if not groups:
            raise ValueError(
                "DynamicGrowth needs size-gated layers (SizeGatedDense, "
                "SizeGatedConv2D) in the model; it has none."
            )
        if self.grow_at is not None:
            for group in groups:
                for site in group:
                    if site.error is not None:
                        raise ValueError(
                            f"DynamicGrowth cannot widen "
                            f"{site.layer.name!r}: {site.error}. Pass "
                            "grow_at=None to only log and schedule."
                        )
        self._groups = groups
        self.events = []

    def on_epoch_begin(self, epoch, logs=None):
        for name, value in (("penalty", self.penalty), ("target", self.target)):
            if value is None:
                continue
            if callable(value):
                value = value(epoch)
                _check_non_negative(f"{name}({epoch})", value)
            for group in self._groups:
                for site in group:
                    getattr(site.layer, f"size_{name}").assign(float(value))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        # On JAX, `self.model` first syncs the loop's state into the
        # model; the loop re-reads the model's state at the start of the
        # next epoch, so what changes here (variables, optimizer) is what
        # it trains on next.
        model = self.model
        for group in self._groups:
            for site in group:
                logs[f"{site.key}_size"] = site.layer.active_size()
                logs[f"{site.key}_capacity"] = site.layer.capacity
            if self.grow_at is None:
                continue
            capacity = group[0].layer.capacity
            largest = max(site.layer.active_size() for site in group)
            limit = self.max_capacity or math.inf
            if capacity - largest > self.grow_at or capacity >= limit:
                continue
            new = min(
                limit, max(capacity + 1, math.ceil(capacity * self.growth))
            )
            seconds = widening.widen(model, group, int(new))
            self.events.append(
                (epoch, group[0].key, capacity, int(new), seconds)
            )
            for site in group:
                logs[f"{site.key}_capacity"] = site.layer.capacity
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1}: widened {group[0].key} from "
                    f"{capacity} to {new} units ({seconds:.2f} s)"
                )


def _check_non_negative(name, value):
    if not arguments.is_number(value):
        raise TypeError(
            f"`{name}` must be a number (or, for penalty and target, a "
            f"function of the epoch). Received: {name}={value!r}"
        )
    if value < 0:
        raise ValueError(f"`{name}` must be non-negative. Received: {value}")
