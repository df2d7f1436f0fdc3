"""Layers for branched (ANDHRA) networks and size-gated (Nimble) layers."""

from keras_andhra.layers.andhra_split import AndhraSplit as AndhraSplit
from keras_andhra.layers.branch_block import BranchBlock as BranchBlock
from keras_andhra.layers.head_collector import HeadCollector as HeadCollector
from keras_andhra.layers.size_gated_conv2d import (
    SizeGatedConv2D as SizeGatedConv2D,
)
from keras_andhra.layers.size_gated_dense import (
    SizeGatedDense as SizeGatedDense,
)
