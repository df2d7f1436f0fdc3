"""Head evaluation: ranking, ensembles, significance and extraction."""

from keras_andhra.evaluation.compare_runs import RunComparison as RunComparison
from keras_andhra.evaluation.compare_runs import compare_runs as compare_runs
from keras_andhra.evaluation.ensembles import (
    ensemble_predict as ensemble_predict,
)
from keras_andhra.evaluation.extract_head import extract_head as extract_head
from keras_andhra.evaluation.head_report import HeadReport as HeadReport
from keras_andhra.evaluation.rank_heads import rank_heads as rank_heads
