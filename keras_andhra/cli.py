"""The command-line main job: `keras-andhra` / `python -m keras_andhra`.

Arguments are parsed before Keras is imported, because `--backend` must set
KERAS_BACKEND before anything imports Keras.
"""

import argparse
import os
import sys
import time


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-andhra",
        description=(
            "Build an ANDHRA Bandersnatch network (ABNet) and its baseline "
            "on bundled data and show the heads, parameters and speed."
        ),
    )
    sub = parser.add_subparsers(dest="command")
    build = sub.add_parser(
        "build", help="build ABNet and the baseline on digits (default)"
    )
    for p in (parser, build):
        p.add_argument(
            "--backend",
            choices=["tensorflow", "jax", "torch"],
            help="Keras backend (default: $KERAS_BACKEND or tensorflow)",
        )
        p.add_argument("--residual-units", type=int, default=0)
        p.add_argument("--width", type=int, default=16)
        p.add_argument("--num-branches", type=int, default=2)
        p.add_argument("--num-levels", type=int, default=3)
        p.add_argument(
            "--activation", default="relu", help="'relu', 'prelu', ..."
        )
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.backend:
        if "keras" in sys.modules and (
            sys.modules["keras"].backend.backend() != args.backend
        ):
            sys.exit(
                f"Keras is already imported on another backend; run "
                f"`KERAS_BACKEND={args.backend} keras-andhra ...` instead."
            )
        os.environ["KERAS_BACKEND"] = args.backend
    build(args)


def build(args):
    import numpy as np

    import keras_andhra as ka
    from keras_andhra import backend

    (x_train, _), (x_test, y_test) = ka.data.load_digits()
    shape = x_train.shape[1:]
    try:
        model = ka.models.abnet(
            args.residual_units,
            num_classes=10,
            num_branches=args.num_branches,
            num_levels=args.num_levels,
            width=args.width,
            input_shape=shape,
            activation=args.activation,
        )
        baseline = ka.models.baseline_resnet(
            args.residual_units,
            num_classes=10,
            width=args.width,
            input_shape=shape,
            activation=args.activation,
        )
    except (TypeError, ValueError) as error:
        sys.exit(f"keras-andhra: {error}")

    import keras

    heads = model.get_layer("heads")
    blocks = [
        layer
        for layer in model.layers
        if isinstance(layer, ka.layers.BranchBlock)
    ]
    print(
        f"backend {keras.backend.backend()} on {backend.device_kind()}; "
        f"digits {x_train.shape[0]} train / {x_test.shape[0]} test images "
        f"of shape {shape}"
    )
    print(f"{model.name}: {heads.num_heads} heads, width {args.width}")
    print(f"  heads: {', '.join(heads.head_names)}")
    trainable = _count(model.trainable_weights)
    per_head = _count(baseline.trainable_weights)
    print(f"  trainable parameters: {trainable:,} in all")
    print(f"  one head's path: {per_head:,} = the baseline {baseline.name}")
    print(
        "  branch execution: "
        + ", ".join(f"{b.name} {b.resolved_execution}" for b in blocks)
    )
    start = time.perf_counter()
    logits = model.predict(x_test, batch_size=128, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = (np.argmax(logits, -1) == y_test[:, None]).mean(axis=0)
    print(
        f"  forward pass over {len(x_test)} test images: {seconds:.2f} s, "
        f"output {logits.shape}"
    )
    print(
        "  untrained per-head accuracy (chance is 0.10): "
        + " ".join(f"{a:.2f}" for a in accuracy)
    )


def _count(weights):
    total = 0
    for w in weights:
        size = 1
        for d in w.shape:
            size *= d
        total += size
    return total
