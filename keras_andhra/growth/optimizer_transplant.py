"""A new optimizer for resized variables, with the old one's state."""

import keras

from keras_andhra.compat import optimizer_state
from keras_andhra.growth import resizing


def rebuild_optimizer(model, optimizer):
    """A new optimizer for the new variables, with the old one's state.

    Old values are matched by variable path and copied into the leading
    slice: old units keep their state, new units start where the optimizer
    starts every variable (zero moments for SGD and Adam), the iteration
    count goes on.
    """
    values = {
        v.path: keras.ops.convert_to_numpy(v) for v in optimizer.variables
    }
    exclusions = optimizer_state.weight_decay_exclusions(optimizer)
    new = optimizer.__class__.from_config(optimizer.get_config())
    variables = model.trainable_variables
    optimizer_state.exclude_weight_decay(new, variables, *exclusions)
    new.build(variables)
    # With `use_ema`, the averages of new units start at the units' values,
    # as Keras starts every average at its first step.
    averages = optimizer_state.moving_averages(new, variables)
    for variable in new.variables:
        if variable.path in values:
            # Beyond the old extent the new slots keep the optimizer's own
            # initial values (0 for moments, Adagrad's and Ftrl's starting
            # accumulators, ...).
            base = averages.get(id(variable), variable)
            variable.assign(resizing.fit_into(values[variable.path], base))
    model.optimizer = new
