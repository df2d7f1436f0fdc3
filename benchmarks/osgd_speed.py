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
    """An `AndhraModel` whose per-head gradients come from the stack."""
    import keras

    import keras_andhra as ka

    backend = keras.config.backend()

    class OneBackwardPerHead(ka.models.AndhraModel):
        def stacked_losses(self, x, y, sample_weight):
            y_pred = self(x, training=True)
            losses = self._head_losses(y, y_pred, sample_weight)
            return y_pred, losses, self.regularization_loss()

        def finish(self, x, y, sw, y_pred, losses, regularization, diag):
            heads = [y_pred[:, k] for k in range(self.num_heads)]
            losses = [losses[k] for k in range(self.num_heads)]
            return self.record_step(
                x, y, heads, losses, sw, regularization, diag
            )

        if backend == "tensorflow":

            def train_step(self, data):
                import tensorflow as tf

                x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
                variables = self.trainable_variables
                with tf.GradientTape(persistent=True) as tape:
                    y_pred, losses, regularization = self.stacked_losses(
                        x, y, sw
                    )
                    per_head = [losses[k] for k in range(self.num_heads)]
                grads = [tape.gradient(loss, variables) for loss in per_head]
                gradients, diag = self.aggregate_gradients(
                    grads, None, variables, None, self.optimizer.iterations
                )
                self.optimizer.apply(gradients, variables)
                return self.finish(
                    x, y, sw, y_pred, losses, regularization, diag
                )

        elif backend == "torch":

            def train_step(self, data):
                import torch

                x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
                variables = self.trainable_variables
                params = [v.value for v in variables]
                self.zero_grad()
                y_pred, losses, regularization = self.stacked_losses(x, y, sw)
                grads = [
                    list(
                        torch.autograd.grad(
                            losses[k],
                            params,
                            retain_graph=True,
                            allow_unused=True,
                        )
                    )
                    for k in range(self.num_heads)
                ]
                gradients, diag = self.aggregate_gradients(
                    grads, None, params, None, self.optimizer.iterations
                )
                with torch.no_grad():
                    self.optimizer.apply(gradients, variables)
                    return self.finish(
                        x,
                        y,
                        sw,
                        y_pred.detach(),
                        losses.detach(),
                        None,
                        {k: v.detach() for k, v in diag.items()},
                    )

        else:

            def train_step(self, state, data):
                import jax
                import jax.numpy as jnp

                trainable, non_trainable, opt_state, metrics_state = state
                x, y, sw = keras.utils.unpack_x_y_sample_weight(data)

                def losses_fn(values):
                    mapping = list(zip(self.trainable_variables, values))
                    mapping += list(
                        zip(self.non_trainable_variables, non_trainable)
                    )
                    with keras.StatelessScope(state_mapping=mapping) as scope:
                        y_pred, losses, regularization = self.stacked_losses(
                            x, y, sw
                        )
                    updated = [
                        scope.get_current_value(v)
                        for v in self.non_trainable_variables
                    ]
                    return losses, (y_pred, losses, regularization, updated)

                losses, pullback, aux = jax.vjp(
                    losses_fn, trainable, has_aux=True
                )
                basis = jnp.eye(losses.shape[0], dtype=losses.dtype)
                grads = [pullback(row)[0] for row in basis]
                mapping = list(zip(self.optimizer.variables, opt_state))
                with keras.StatelessScope(state_mapping=mapping):
                    step = jnp.asarray(self.optimizer.iterations.value)
                gradients, diag = self.aggregate_gradients(
                    grads, None, trainable, None, step
                )
                y_pred, losses, regularization, non_trainable = aux
                trainable, opt_state = self.optimizer.stateless_apply(
                    opt_state, gradients, trainable
                )
                mapping = list(zip(self.metrics_variables, metrics_state))
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    logs = self.finish(
                        x, y, sw, y_pred, losses, regularization, diag
                    )
                metrics_state = [
                    scope.get_current_value(v) for v in self.metrics_variables
                ]
                return logs, (
                    trainable,
                    non_trainable,
                    opt_state,
                    metrics_state,
                )

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
