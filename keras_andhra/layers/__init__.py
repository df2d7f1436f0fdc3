"""Layers for branched (ANDHRA) networks."""

from keras_andhra.layers.andhra_split import AndhraSplit as AndhraSplit
from keras_andhra.layers.branch_block import BranchBlock as BranchBlock
from keras_andhra.layers.head_collector import HeadCollector as HeadCollector
