"""The command-line main job: `keras-andhra` / `python -m keras_andhra`.

    keras-andhra                  train ABNet-R0 and its baseline on
                                  mnist-5000 (offline), rank the heads
    keras-andhra train --dataset cifar10 --model abnet-r1 --data-dir DIR
    keras-andhra reproduce --dataset mnist-5000 --models baseline,abnet-r0
                                  --seeds 3
    keras-andhra build            build and summarise, no training
    keras-andhra rank MODEL       rank the heads of a saved model

Every command trains with the recipe that belongs to the data
(`keras_andhra.experiments.Recipe.for_dataset`), printed at the start;
the flags override it. `--backend` must take effect before Keras is
imported, and importing keras_andhra imports Keras: when Keras already
runs on another backend, the command starts itself again with
KERAS_BACKEND set.

The package holds the parser (`parser.py`), the entry point that picks
the backend and dispatches (`entry_point.py`) and the commands
(`commands.py`).
"""

from keras_andhra.cli.commands import rank as rank
from keras_andhra.cli.commands import train as train
from keras_andhra.cli.entry_point import main as main
from keras_andhra.cli.entry_point import run as run
