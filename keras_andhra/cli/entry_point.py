"""The `keras-andhra` entry point: picks the backend, runs a command."""

import os
import sys

from keras_andhra.cli import commands
from keras_andhra.cli.parser import make_parser


def main(argv=None):
    """The `keras-andhra` command: runs it and returns the exit status 0.

    Errors exit through `SystemExit` with a message. The console script
    passes the return value to `sys.exit`, so it must not be the result;
    `run` returns that. With `--backend` naming another backend than the
    one Keras was imported on, the command runs again in a new process.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    backend = make_parser().parse_args(argv).backend
    if backend and _imported_backend() not in (None, backend):
        _restart(argv, backend)
    run(argv)
    return 0


def _imported_backend():
    keras = sys.modules.get("keras")
    return None if keras is None else keras.backend.backend()


def _restart(argv, backend):
    """Runs `python -m keras_andhra ARGV` on `backend`; does not return."""
    import subprocess

    command = [sys.executable, "-m", "keras_andhra", *argv]
    env = dict(os.environ, KERAS_BACKEND=backend)
    sys.stdout.flush()
    if os.name == "posix":
        os.execve(sys.executable, command, env)
    sys.exit(subprocess.run(command, env=env, check=False).returncode)


def run(argv=None):
    """Runs a `keras-andhra` command and returns its result.

    `train` and `rank` return the `HeadReport` (`train` of a baseline its
    test scores), `reproduce` the `Reproduction`, `build` `None`.
    """
    args = make_parser().parse_args(argv)
    if args.backend and _imported_backend() not in (None, args.backend):
        sys.exit(
            "Keras is already imported on another backend; run "
            f"`KERAS_BACKEND={args.backend} keras-andhra ...` instead."
        )
    command = args.command or "train"
    try:
        recipe = commands.recipe_of(args)
        if command == "reproduce":
            return commands.reproduce(args, recipe)
        if command == "rank":
            commands.check_saved_models(args)
        data = commands.load_data(args, recipe)
        if command == "rank":
            return commands.rank(args, data)
        models = commands.build(args, recipe, data)
        commands.describe(models, args, recipe, data)
        if command == "train":
            return commands.train(models, args, recipe, data)
    except (ImportError, RuntimeError, TypeError, ValueError) as error:
        message = str(error)
        if len(message) > 600:
            message = message[:600] + " ..."
        sys.exit(f"keras-andhra {command}: {message}")
    return None
