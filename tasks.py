#!/usr/bin/env python3
"""Set up keras_andhra and run its jobs with nothing but Python 3.10+ and pip.

    python3 tasks.py main [ARGS]  set up, then run the main job (keras-andhra)
    python3 tasks.py test         set up, then the docs build and the test
                                  suite once per backend (TensorFlow, JAX,
                                  PyTorch); fails if any of them fails
    python3 tasks.py bench        set up, then benchmarks/branch_speed.py
    python3 tasks.py docs         set up, then build the docs into site/
    python3 tasks.py setup        only create/refresh the virtual environment

Everything is installed into ./.venv (created on first use, refreshed when
pyproject.toml or this file changes).
"""

import hashlib
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".keras-andhra-setup"
BACKENDS = ("tensorflow", "jax", "torch")

# torch is pinned: its CPU build is what these machines cache, and an
# unpinned torch pulls a multi-GB CUDA build.
TORCH = "torch==2.13.0"
TENSORFLOW = (
    "tensorflow-cpu>=2.16"
    if platform.machine().lower() in ("x86_64", "amd64")
    else "tensorflow>=2.16"
)
REQUIREMENTS = [TORCH, TENSORFLOW, "-e", ".[jax,torch,dev,docs,plot,data]"]


def run(command, env=None, check=True):
    print("+ " + " ".join(str(c) for c in command), flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env)
    if check and result.returncode != 0:
        sys.exit(result.returncode)
    return result.returncode


def setup():
    if sys.version_info < (3, 10):
        sys.exit("keras_andhra needs Python 3.10 or newer.")
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + " ".join(REQUIREMENTS).encode()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not PYTHON.exists():
        run([sys.executable, "-m", "venv", str(VENV)])
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet"]
    run(pip + ["--upgrade", "pip"])
    run(pip + REQUIREMENTS)
    STAMP.write_text(digest)


def backend_env(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTHONPATH", None)
    return env


def test(pytest_args):
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    failures = []
    start = time.time()
    docs = [str(BIN / "mkdocs"), "build", "--strict", "--quiet"]
    if run(docs, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), check=False):
        failures.append("docs")
    for backend in BACKENDS:
        print(f"\n=== tests on {backend} ===", flush=True)
        command = [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        process = subprocess.Popen(
            command + pytest_args,
            cwd=ROOT,
            env=backend_env(backend),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        last = ""
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.strip():
                last = line
        code = process.wait()
        found = dict.fromkeys(counts, 0)
        for number, word in re.findall(
            r"(\d+) (passed|failed|skipped|errors?)", last
        ):
            found["errors" if word.startswith("error") else word] = int(number)
        for key in counts:
            counts[key] += found[key]
        # pytest exit 5 means no test ran: that is a failure here.
        if code != 0 or found["passed"] == 0:
            failures.append(backend)
    minutes = (time.time() - start) / 60
    print(f"\nbackends failed: {', '.join(failures) or 'none'}")
    print(f"wall time: {minutes:.1f} min")
    print(
        f"total: {counts['passed']} passed, "
        f"{counts['failed'] + counts['errors']} failed, "
        f"{counts['skipped']} skipped"
    )
    sys.exit(1 if failures else 0)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in (
        "main",
        "test",
        "bench",
        "docs",
        "setup",
    ):
        sys.exit(__doc__)
    task, args = sys.argv[1], sys.argv[2:]
    setup()
    if task == "main":
        sys.exit(run([str(BIN / "keras-andhra")] + args, check=False))
    if task == "test":
        test(args)
    if task == "bench":
        bench = [str(PYTHON), "benchmarks/branch_speed.py"]
        sys.exit(run(bench + args, check=False))
    if task == "docs":
        sys.exit(run([str(BIN / "mkdocs"), "build", "--strict"], check=False))


if __name__ == "__main__":
    main()
