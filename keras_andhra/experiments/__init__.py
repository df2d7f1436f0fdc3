"""Recipes and the seeds x models reproduction of the paper."""

from keras_andhra.experiments.model_names import MODEL_NAMES as MODEL_NAMES
from keras_andhra.experiments.model_names import build_model as build_model
from keras_andhra.experiments.recipe import EpochCosineDecay as EpochCosineDecay
from keras_andhra.experiments.recipe import Recipe as Recipe
from keras_andhra.experiments.reproduce import reproduce as reproduce
from keras_andhra.experiments.reproduction import Reproduction as Reproduction
