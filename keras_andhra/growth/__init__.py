"""Growth: widening and pruning size-gated layers inside a model.

The size-gated layers themselves (`SizeGatedDense`, `SizeGatedConv2D`)
are layers (`keras_andhra.layers`); this package is their engine:

* `sites`: where a gated layer sits: the layers that read its output,
  and its twins in the other copies of a branch block;
* `resizing`: rebuilding a built layer with other shapes, values kept;
* `optimizer_transplant`: a new optimizer with the old one's state;
* `widening`: `widen_layer` (and what `DynamicGrowth` calls);
* `pruning`: `prune_to_active`.

A size-gated layer's output feeds other layers. Widening it means wider
variables for it and more input channels for what reads it: per-channel
layers (normalisation, activations, pooling, dropout) pass the new
channels on, and the first layer that mixes channels (`Dense`, `Conv*D`,
another gated layer) takes them as new input rows. New units enter with
gate 0, so they output exactly 0 and the network computes what it did.
A gated layer inside a `BranchBlock` copy is widened in every copy at
once, so the copies keep one architecture.
"""

from keras_andhra.growth.pruning import prune_to_active as prune_to_active
from keras_andhra.growth.widening import widen_layer as widen_layer
