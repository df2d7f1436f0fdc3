"""Runs a benchmark script once per backend, each in its own process.

KERAS_BACKEND is read when Keras is imported, so every backend needs a
fresh interpreter. The script, started with `--worker`, prints one line
`RESULT <json>`; this returns the parsed results per backend.
"""

import json
import os
import subprocess
import sys


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
