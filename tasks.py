#!/usr/bin/env python3
"""Set up keras_andhra and run its jobs with nothing but Python 3.10+ and pip.

    python3 tasks.py main [ARGS]  set up, then run the main job (keras-andhra)
    python3 tasks.py test         set up, then the docs build and the test
                                  suite once per backend (TensorFlow, JAX,
                                  PyTorch, side by side); fails if any of
                                  them fails
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
import tempfile
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
    """Docs, then the suite once per backend, the backends side by side.

    One pytest process per backend (Keras reads the backend at import);
    they run at the same time, since most of a test's time is one Python
    thread tracing or compiling a model, and each writes to its own log,
    printed whole when it ends.
    """
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    failures = []
    start = time.time()
    docs = [str(BIN / "mkdocs"), "build", "--strict", "--quiet"]
    if run(docs, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), check=False):
        failures.append("docs")
    logs = Path(tempfile.mkdtemp(prefix="keras-andhra-tests-"))
    running = {}
    for backend in BACKENDS:
        command = [
            str(PYTHON),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={logs / ('tmp-' + backend)}",
        ]
        log = open(logs / f"{backend}.log", "w")
        print(f"+ KERAS_BACKEND={backend} {' '.join(command)}", flush=True)
        process = subprocess.Popen(
            command + pytest_args,
            cwd=ROOT,
            env=backend_env(backend),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        running[backend] = (process, log, time.time())
    while running:
        for backend, (process, log, began) in list(running.items()):
            code = process.poll()
            if code is None:
                continue
            del running[backend]
            log.close()
            minutes = (time.time() - began) / 60
            print(
                f"\n=== tests on {backend} ({minutes:.1f} min) ===", flush=True
            )
            output = (logs / f"{backend}.log").read_text()
            print(output, end="", flush=True)
            lines = [line for line in output.splitlines() if line.strip()]
            last = lines[-1] if lines else ""
            found = dict.fromkeys(counts, 0)
            for number, word in re.findall(
                r"(\d+) (passed|failed|skipped|errors?)", last
            ):
                found["errors" if word.startswith("error") else word] = int(
                    number
                )
            for key in counts:
                counts[key] += found[key]
            # pytest exit 5 means no test ran: that is a failure here.
            if code != 0 or found["passed"] == 0:
                failures.append(backend)
        time.sleep(2)
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
