"""Processes the tests start and stop: servers on a free port of 127.0.0.1, in a group of their own.

Imported by the serving, orchestration and integration tests (pytest puts tests/ on the import
path); `serving` is the project's own `serve` command on a free port. A server here (uvicorn and
its workers, `dagster dev`, `mlflow server`) starts processes of its own, so each runs in a new
process group and is stopped whole, never left behind.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import {{ cookiecutter.package_name }} as package


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def started(
    command: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` in its own process group, its output in `log`; SIGTERM to the group on leaving
    (SIGKILL after 30 s)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have stopped on its own
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_ok(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90
) -> None:
    """Return once GET `url` answers 200; fail with the log's end if the process dies first or
    `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError),
            urllib.request.urlopen(url, timeout=2) as reply,  # noqa: S310 (127.0.0.1)
        ):
            if reply.status == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer 200:\n{log.read_text(encoding='utf-8')[-4000:]}")
        time.sleep(0.3)


@contextlib.contextmanager
def serving(python: str, env: dict[str, str], log_file: Path, timeout: float = 60) -> Iterator[str]:
    """`<python> -m <package> serve` in its own process group; its base URL once /ready is 200."""
    port = free_port()
    command = [python, "-m", package.__name__, "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with started(command, env, log_file) as process:
        wait_until_ok(f"{base}/ready", process, log_file, timeout)
        yield base
