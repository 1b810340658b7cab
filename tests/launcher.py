"""convae's console scripts for the tests, forked from a process that has imported them.

A console script spends 9-11 s of CPU importing torch, torchvision and Lightning before its
first step, and the tests start well over a hundred: most of the suite's time. Forked from a
parent that imported them once, a 4-step ``convae-train`` takes 3 s instead of 12, with the
same numbers. The child is still a real process running the script's real entry point, in
its own working folder and environment, with its own pid, stdout, stderr and exit status.

The parent (one per test process, started on first use) never runs torch itself: forking
after torch has started its thread pools is what is unsafe. Processes that the child starts
(DDP ranks, joblib and submitit jobs) are started the usual way. ``CONVAE_TEST_EXEC=1``
makes ``run_script`` start every script as a new process instead.

Run as ``python launcher.py``: reads one JSON request per line on stdin, answers on stdout
with the child's pid, then its exit status.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
ENTRY_POINTS = {  # pyproject.toml's [project.scripts]
    "convae-train": "convae.train:main",
    "convae-report": "convae.report.cli:main",
    "convae-eval": "convae.evaluate:main",
    "convae-bench": "convae.bench.cli:main",
    "convae-board": "convae.board:main",
}
# What the entry points import only once a command is accepted (torch, Lightning, pandas,
# matplotlib): imported here too, or every child would pay for them again.
DEFERRED = ["convae.training.run", "convae.training.evaluation", "convae.report.build"]


class Forked:
    """The test side: one parent process, started on first use, asked to fork each run."""

    _parent: subprocess.Popen | None = None
    _pending = b""  # answer bytes read but not yet returned

    @classmethod
    def run(
        cls, name: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess:
        parent = cls._started()
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            request = {"name": name, "args": args, "cwd": str(cwd), "env": env,
                       "stdout": str(out), "stderr": str(err)}  # fmt: skip
            parent.stdin.write((json.dumps(request) + "\n").encode())
            parent.stdin.flush()
            pid = cls._answer(parent, 60)["pid"]
            try:
                rc = cls._answer(parent, timeout)["rc"]
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                cls._answer(parent, 60)
                raise subprocess.TimeoutExpired([name, *args], timeout) from None
            return subprocess.CompletedProcess(
                [str(BIN / name), *args], rc, out.read_text(errors="replace"),
                err.read_text(errors="replace"),
            )  # fmt: skip

    @classmethod
    def _started(cls) -> subprocess.Popen:
        if cls._parent is None or cls._parent.poll() is not None:
            cls._parent = subprocess.Popen(
                [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                bufsize=0,
            )  # fmt: skip
            cls._pending = b""
            ready = cls._answer(cls._parent, 300)
            assert ready == {"ready": True}, ready
        return cls._parent

    @classmethod
    def _answer(cls, parent: subprocess.Popen, timeout: float) -> dict[str, Any]:
        """The next answer line; read from the pipe itself, so that an answer already read
        along with the one before it is never waited for."""
        deadline = time.monotonic() + timeout
        fd = parent.stdout.fileno()
        while b"\n" not in cls._pending:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError
            data = os.read(fd, 65536)
            if not data:
                raise RuntimeError(f"the test launcher exited ({parent.wait()})")
            cls._pending += data
        line, cls._pending = cls._pending.split(b"\n", 1)
        return json.loads(line)


def _exit_status(code: object) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _child(request: dict[str, Any], answers: int) -> None:
    """In the forked child: become the console script, then exit with its status."""
    os.close(answers)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    streams = ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], write),
               (2, request["stderr"], write))  # fmt: skip
    for fd, path, flags in streams:
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = [str(BIN / request["name"]), *request["args"]]
    module, func = ENTRY_POINTS[request["name"]].split(":")
    try:
        code = _exit_status(getattr(importlib.import_module(module), func)())
    except SystemExit as stop:
        code = _exit_status(stop.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()  # what the interpreter runs at exit: log handlers, writers
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """The parent: import every entry point (and what they defer) once, then fork one child
    per request."""
    answers = os.dup(1)
    os.dup2(2, 1)  # a stray print must not end up among the answers
    sys.path[0] = str(BIN)  # as for a console script: its folder first, not tests/
    for module in [target.split(":")[0] for target in ENTRY_POINTS.values()] + DEFERRED:
        importlib.import_module(module)
    os.write(answers, b'{"ready": true}\n')
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, answers)
        os.write(answers, (json.dumps({"pid": pid}) + "\n").encode())
        _, status = os.waitpid(pid, 0)
        os.write(answers, (json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n").encode())


if __name__ == "__main__":
    serve()
