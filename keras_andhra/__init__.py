"""keras_andhra: ANDHRA Bandersnatch multi-head networks for Keras 3.

Importing the package imports every group (`callbacks`, `data`,
`evaluation`, `experiments`, `gradients`, `layers`, `models`), which
registers every layer, model and aggregator with Keras's serialisation: a
`.keras` file loads after a bare `import keras_andhra`, as serving jobs
do. Choose the
backend before importing it (`KERAS_BACKEND`), as for Keras itself.
"""

__version__ = "0.1.0"

from keras_andhra import callbacks as callbacks
from keras_andhra import data as data
from keras_andhra import evaluation as evaluation
from keras_andhra import experiments as experiments
from keras_andhra import gradients as gradients
from keras_andhra import layers as layers
from keras_andhra import models as models
