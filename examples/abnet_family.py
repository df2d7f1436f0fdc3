"""Build the paper's ABNet family and its baseline; print their sizes.

For R = 0..3 at width 64 on CIFAR-10 shapes (build only, no data), prints
the trainable parameters of the baseline BS-1G-R{R}, of the 8-head
ABNet-2G-R{R}, and of the paper's ablation trees (2H1, 2H2, 2H3, 4H, 4H2):

    python examples/abnet_family.py --width 16
"""

import argparse
import math

import keras_andhra as ka

ABLATIONS = {
    "2H1": (True, False, False),
    "2H2": (False, True, False),
    "2H3": (False, False, True),
    "4H": (True, True, False),
    "4H2": (False, True, True),
}


def trainable(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def main(width=64, residual_units=(0, 1, 2, 3)):
    rows = []
    for r in residual_units:
        baseline = trainable(ka.models.baseline_resnet(r, width=width))
        abnet = trainable(ka.models.abnet(r, width=width))
        rows.append((f"R{r}", baseline, abnet))
        print(
            f"R{r}: baseline {baseline / 1e6:7.2f}M   "
            f"8-head ABNet {abnet / 1e6:7.2f}M   ({abnet / baseline:.2f}x)"
        )
    for name, split_after in ABLATIONS.items():
        model = ka.models.abnet(0, width=width, split_after=split_after)
        print(
            f"R0 {name:>3}: {model.output.shape[1]} heads, "
            f"{trainable(model) / 1e6:.2f}M"
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    main(parser.parse_args().width)
