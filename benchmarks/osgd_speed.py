"""Training-step time with gradient surgery vs the plain step.

Median `train_on_batch` time of the 8-head ABNet with, as ratios to the
plain step (mean of the head losses, no aggregator):

* `OSGD()` (exact, per variable), `OSGD(granularity="global")` and
  `OSGD(granularity="representation")` (surgery at the split points);
* `PCGrad()`;
* a one-backward-per-head implementation of exact OSGD, as
  gradient-surgery libraries do it: each head's gradient taken from its
  slice of the stacked output (so every backward pass runs through the
  stack into every branch), then the same OSGD arithmetic.

    python benchmarks/osgd_speed.py                  # all backends
    python benchmarks/osgd_speed.py --backends jax --steps 5
"""

import json

import backend_runner


def naive_model_class():
    """An `AndhraModel` whose per-head gradients come from the stack.

    Its training step is the library's `HeadStep` with one change: each
    head's loss is taken from its slice of the stacked output, so every
    head's backward pass runs through the stack into every branch.
    """
    import keras_andhra as ka

    class FromTheStack(ka.models.HeadStep):
        def forward(self, x, y, sample_weight=None):
            y_pred = self.model(x, training=True)
            leaves = [y_pred[:, k] for k in range(self.model.num_heads)]
            losses = self.model.per_head_losses(y, leaves, sample_weight)
            return ka.models.StepOutputs(
                leaves, losses, self.model.regularization_loss()
            )

    class OneBackwardPerHead(ka.models.AndhraModel):
        def make_head_step(self, aggregator):
            return FromTheStack(self, aggregator)

    return OneBackwardPerHead


def measure(args):
    import keras

    import keras_andhra as ka

    shape = (args.image_size, args.image_size, 3)
    x, y = backend_runner.synthetic_batch(args)

    def model(aggregator=None, cls=None):
        built = ka.models.abnet(
            args.residual_units, width=args.width, input_shape=shape
        )
        if cls is not None:
            built = cls(built.input, built.output, name=built.name)
        built.compile(
            optimizer=keras.optimizers.SGD(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        built.gradient_aggregator = aggregator
        return built, y

    osgd = ka.gradients.OSGD
    candidates = {
        "plain": model(),
        "osgd": model(osgd()),
        "osgd_global": model(osgd(granularity="global")),
        "osgd_representation": model(osgd(granularity="representation")),
        "pcgrad": model(ka.gradients.PCGrad()),
        "one_backward_per_head": model(osgd(), naive_model_class()),
    }
    results = backend_runner.median_step_times(candidates, x, args)
    print("RESULT " + json.dumps(results))


COLUMNS = (
    ("osgd", "OSGD"),
    ("osgd_global", "OSGD global"),
    ("osgd_representation", "OSGD representation"),
    ("pcgrad", "PCGrad"),
    ("one_backward_per_head", "OSGD, one backward per head"),
)


def main():
    args, rows = backend_runner.run(__file__, __doc__, measure)
    if rows is None:
        return
    header = " | ".join(f"{title} / plain" for _, title in COLUMNS)
    print(f"| backend | plain (ms) | {header} |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for backend, r in rows:
        ratios = " | ".join(f"{r[key] / r['plain']:.2f}" for key, _ in COLUMNS)
        print(f"| {backend} | {r['plain'] * 1e3:.0f} | {ratios} |")


if __name__ == "__main__":
    main()
