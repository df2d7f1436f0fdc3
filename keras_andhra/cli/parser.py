"""The `keras-andhra` argument parser."""

import argparse

_COMMANDS = {
    "train": "train and compare (default)",
    "build": "build and summarise only",
    "rank": "rank the heads of a saved model",
    "reproduce": "seeds x models, with the paper's statistics",
}
_DEFAULTS = dict(
    dataset="mnist-5000",
    model="abnet-r0",
    models="baseline,abnet-r0",
    seeds="0,1,2,3,4",
    seed=0,
    num_branches=2,
    num_levels=3,
    activation="relu",
    select_on="validation",
)


def make_parser():
    """The parser of `keras-andhra [options] [command] [options]`."""
    parser = argparse.ArgumentParser(
        prog="keras-andhra",
        description=(
            "Train an ANDHRA Bandersnatch network (ABNet) and its baseline "
            "with the recipe of the data, then rank the heads, ensemble them "
            "and test them against the baseline. Without arguments: "
            "mnist-5000, offline, a few minutes on a CPU."
        ),
    )
    sub = parser.add_subparsers(dest="command")
    # The options are accepted before and after the command. A subcommand
    # only sets what it was given (SUPPRESS), so it does not overwrite an
    # option given before it with its own default.
    commands = {
        name: sub.add_parser(
            name, help=text, argument_default=argparse.SUPPRESS
        )
        for name, text in _COMMANDS.items()
    }
    _add_rank_options(commands["rank"])
    _add_data_options([parser, *commands.values()])
    _add_model_options([parser, commands["train"], commands["build"]])
    _add_recipe_options(
        [parser, commands["train"], commands["build"], commands["reproduce"]]
    )
    _add_run_options([parser, commands["train"], commands["reproduce"]])
    _add_reproduce_options([parser, commands["reproduce"]])
    parser.set_defaults(**_DEFAULTS)
    return parser


def _add_rank_options(rank):
    rank.add_argument("saved_model", help="a saved ANDHRA model (.keras)")
    rank.add_argument(
        "--baseline", default=None, help="a saved baseline model (.keras)"
    )
    rank.add_argument(
        "--plot",
        default=None,
        help="where to write the plot (default: next to MODEL)",
    )


def _add_data_options(parsers):
    for p in parsers:
        p.add_argument(
            "--backend",
            choices=["tensorflow", "jax", "torch"],
            help="Keras backend (default: $KERAS_BACKEND or tensorflow)",
        )
        p.add_argument(
            "--dataset",
            help=(
                "mnist-5000 (default, offline), digits (offline), cifar10, "
                "cifar100, any tensorflow-datasets image set, or a folder "
                "of images with one subfolder per class"
            ),
        )
        p.add_argument("--data-dir", help="tensorflow-datasets data dir")


def _add_model_options(parsers):
    for p in parsers:
        p.add_argument(
            "--model",
            help="abnet-r0 (default) ... abnet-r3, or baseline[-rR]",
        )
        p.add_argument("--num-branches", type=int)
        p.add_argument("--num-levels", type=int)
        p.add_argument("--activation")


def _add_recipe_options(parsers):
    for p in parsers:
        p.add_argument("--width", type=int, help="stem width of the models")
        p.add_argument("--epochs", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--learning-rate", type=float)
        p.add_argument(
            "--weight-decay", type=float, help="coupled L2 coefficient"
        )


def _add_run_options(parsers):
    for p in parsers:
        p.add_argument(
            "--output",
            help=(
                "directory of the results (default: runs/<dataset>-<backend>"
                " for train, runs/reproduce-<dataset> for reproduce)"
            ),
        )
        p.add_argument(
            "--seed", type=int, help="seed of a train run (default 0)"
        )


def _add_reproduce_options(parsers):
    for p in parsers:
        p.add_argument("--models", help="comma-separated model names")
        p.add_argument(
            "--seeds", help="comma-separated seeds, or a count: 3 = 0,1,2"
        )
        p.add_argument(
            "--select-on",
            choices=["validation", "test"],
            help=(
                "which split picks the kept epoch and head: validation "
                "(default); test reproduces the reference code's biased "
                "selection"
            ),
        )
