#!/usr/bin/env python3
"""The commands of the README, on a machine that has nothing but Python ≥ 3.11.

    python3 run.py serve    # virtualenv, install, migrate, embedded servers, demo data, serve
    python3 run.py test     # the whole test suite, against real (embedded) PostgreSQL and Redis
    python3 run.py check    # format, lint, import contracts and types (what CI runs before the tests)

Anything else is passed to the ``carbon-points`` command line inside the virtualenv:
``python3 run.py ledger verify``.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
INSTALLED_FROM = [ROOT / "pyproject.toml", ROOT / "operators" / "pyproject.toml"]


def ensure_virtualenv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py starts under any python3 and says why it stops
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating the virtualenv in {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in INSTALLED_FROM if p.exists())).hexdigest()
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("installing the platform and its dependencies into .venv", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    targets = ["-e", f"{ROOT}[dev]"]
    if (ROOT / "operators" / "pyproject.toml").exists():
        targets += ["-e", str(ROOT / "operators")]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *targets], check=True)
    stamp.write_text(digest)


CHECKS = [
    ("format", ["ruff", "format", "--check", "."]),
    ("lint", ["ruff", "check", "."]),
    ("import contracts", ["lint-imports"]),
    ("types", ["mypy"]),
]
"""The static checks, in order; their settings live in pyproject.toml and .importlinter."""


def check() -> int:
    """Run every check (a failure does not hide the later ones); 0 when all pass."""
    failed = []
    for name, (tool, *tool_args) in CHECKS:
        print(f"== {name}: {tool} {' '.join(tool_args)}".rstrip(), flush=True)
        if subprocess.run([str(BIN / tool), *tool_args]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


def main() -> None:
    args = sys.argv[1:] or ["serve"]
    ensure_virtualenv()
    os.chdir(ROOT)
    if args[0] == "check":
        sys.exit(check())
    if args[0] == "test":
        # Two workers (one per core of the reference machine), each with its own embedded servers;
        # a test file stays on one worker, the slowest files first (tests/durations.json, see
        # tests/conftest.py). `-n 0` runs everything in one process.
        workers = (
            []
            if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in args[1:])
            else ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]
        )
        command = [str(BIN / "python"), "-m", "pytest", *workers, *args[1:]]
    elif args[0] == "serve":
        command = [str(BIN / "carbon-points"), "serve", "--demo", *args[1:]]
    else:
        command = [str(BIN / "carbon-points"), *args]
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
