"""Runs a benchmark script once per backend, each in its own process.

KERAS_BACKEND is read when Keras is imported, so every backend needs a
fresh interpreter. The script, started with `--worker`, prints one line
`RESULT <json>`; this returns the parsed results per backend.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def parse_args(description, extra=None):
    """The arguments every benchmark here takes, plus `extra(parser)`'s."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--residual-units", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def synthetic_batch(args):
    """One CIFAR-shaped batch `(x, labels)` of 10 classes, fixed seed."""
    import numpy as np

    shape = (args.image_size, args.image_size, 3)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size,) + shape, dtype=np.float32)
    return x, rng.integers(0, 10, size=(args.batch_size,))


def run_per_backend(script, argv, backends):
    """Returns `[(backend, result_dict), ...]`; exits if a backend fails."""
    rows = []
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend)
        run = subprocess.run(
            [sys.executable, script, "--worker"] + argv,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [
            line
            for line in run.stdout.splitlines()
            if line.startswith("RESULT")
        ]
        if run.returncode != 0 or not lines:
            print(f"{backend}: failed\n{run.stderr[-2000:]}", file=sys.stderr)
            sys.exit(1)
        rows.append((backend, json.loads(lines[-1][len("RESULT ") :])))
    return rows


def run(script, doc, measure, extra=None, title=None):
    """A benchmark's main: the worker measures, the parent collects.

    Returns `(args, rows)` in the parent after printing the setting's
    title line (`title(args)`, by default the 8-head ABNet's training
    setting), `(args, None)` in a worker after `measure(args)`. `extra`
    adds arguments, as in `parse_args`.
    """
    args = parse_args(doc.splitlines()[0], extra)
    if args.worker:
        measure(args)
        return args, None
    rows = run_per_backend(script, sys.argv[1:], args.backends)
    print((title or _abnet_title)(args))
    return args, rows


def _abnet_title(args):
    return (
        f"8-head ABNet-2G-R{args.residual_units}, width {args.width}, "
        f"{args.image_size}x{args.image_size}, batch {args.batch_size}, "
        f"median of {args.steps} train steps"
    )


def median_step_times(candidates, x, args):
    """Median `train_on_batch` seconds of each `{name: (model, labels)}`.

    Candidates run round-robin, so that drift in machine load hits every
    candidate alike.
    """
    for model, labels in candidates.values():
        for _ in range(args.warmup):
            model.train_on_batch(x, labels)
    times = {name: [] for name in candidates}
    for _ in range(args.steps):
        for name, (model, labels) in candidates.items():
            start = time.perf_counter()
            model.train_on_batch(x, labels)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
