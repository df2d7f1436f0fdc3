"""Fences around the private Keras API keras_andhra cannot do without.

One module per concern, each the only place that touches its private
names, each with a canary in `tests/compat_test.py` that fails with a
message naming the module when a Keras release changes them:

* `functional_graph`: running a functional graph with swapped operations
  (`Functional._run_through_graph`).
* `layer_state`: giving a built layer variables of new shapes (growth):
  the layer's state lock and variable tracker.
* `optimizer_state`: what a rebuilt optimizer must inherit that its
  config does not carry: weight-decay exclusions and `use_ema` averages.

Backend-specific fences live with their backend
(`keras_andhra/backend/torch.py`: the PyTorch parameter registry).
"""
