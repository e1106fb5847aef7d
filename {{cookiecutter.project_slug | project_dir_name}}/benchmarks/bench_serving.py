"""`make bench-serve`: our service against `mlflow models serve`, same champion, same requests.

A development tool, kept out of the package: the image and the service do not ship it.

Each server is started on 127.0.0.1 in turn and loaded at 1, 8 and 32 connections with one-row
and 100-row ``dataframe_split`` bodies on ``/invocations`` (the endpoint both servers offer), for
a bounded time per run. The load generator is ``wrk`` when it is installed (``apt-get install
wrk``), else a bounded asyncio HTTP/1.1 keep-alive client in this file (no dependency); the table
says which. Also measured: time to ready, and in-process predict calls per second.

Prints a Markdown table; ``--output FILE`` also writes it there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }}.config import Settings, get_settings
from {{ cookiecutter.package_name }}.registry import CHAMPION, fetch_registered
from {{ cookiecutter.package_name }}.serving.loader import LoadedModel, load_registered
from {{ cookiecutter.package_name }}.serving.predictor import probe_rows

HOST = "127.0.0.1"
PACKAGE = package.__name__


@dataclass
class LoadResult:
    """One load run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float) -> float:
    """Seconds until `url` answers 200 (raises after `timeout`)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:  # noqa: PLR2004
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own process group, output to `log`."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and every process it started."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def run_wrk(url: str, body: bytes, connections: int, seconds: float) -> LoadResult:
    """Load `url` with wrk (POST `body`)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body.decode('utf-8'))}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    threads = min(connections, 2)
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--latency",
        "--timeout", "10s", "-s", script.name, url,
    ]  # fmt: skip
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    )
    Path(script.name).unlink()
    return parse_wrk_output(output.stdout)


def parse_wrk_output(text: str) -> LoadResult:
    """The figures of one ``wrk --latency`` run; refused and timed-out requests both fail."""
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    timeouts = re.search(r"Socket errors: .*?timeout (\d+)", text)
    return LoadResult(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        p50_ms=_wrk_ms(re.search(r"50%\s+([\d.]+\w+)", text).group(1)),  # type: ignore[union-attr]
        p99_ms=_wrk_ms(re.search(r"99%\s+([\d.]+\w+)", text).group(1)),  # type: ignore[union-attr]
        non_2xx=(int(non_2xx.group(1)) if non_2xx else 0)
        + (int(timeouts.group(1)) if timeouts else 0),
    )


def p99_comparison(ours_ms: float, peer_ms: float) -> str:
    """How our p99 compares with the peer's, in words that stay true either way round."""
    if ours_ms <= peer_ms:
        return f"{peer_ms / max(ours_ms, 1e-9):.1f}x lower"
    return f"{ours_ms / max(peer_ms, 1e-9):.1f}x higher"


def _wrk_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_asyncio(url: str, body: bytes, connections: int, seconds: float) -> LoadResult:
    """Load `url` with `connections` keep-alive HTTP/1.1 clients for `seconds` (no dependency)."""
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match is not None  # noqa: S101 (our own URLs)
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    failures = 0

    async def client(deadline: float) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in {b"\r\n", b""}:
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - sent)
                if not status_line.split()[1].startswith(b"2"):
                    failures += 1
        finally:
            writer.close()

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(client(started + seconds) for _ in range(connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    ordered = sorted(latencies) or [0.0]
    return LoadResult(
        requests_per_second=len(latencies) / elapsed,
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        non_2xx=failures,
    )


def request_bodies(settings: Settings) -> tuple[dict[int, bytes], LoadedModel]:
    """``dataframe_split`` bodies of 1 and 100 rows (probe rows of the champion's contract)."""
    model = load_registered(settings, CHAMPION)
    pipeline = fetch_registered(settings, CHAMPION, model.version).pipeline
    # Complete rows (mlflow's schema enforcement refuses nulls in integer columns).
    records = [
        {name: 0.0 if value is None else value for name, value in row.items()}
        for row in probe_rows(pipeline, model.contract, n_rows=100)
    ]
    columns = model.contract.feature_columns
    bodies = {
        size: json.dumps(
            {
                "dataframe_split": {
                    "columns": columns,
                    "data": [[r[c] for c in columns] for r in records[:size]],
                }
            }
        ).encode()
        for size in (1, 100)
    }
    return bodies, model


def in_process_rates(
    model: LoadedModel, body: bytes, max_batch: int, seconds: float = 2.0
) -> tuple[float, float]:
    """Calls per second on one core, in this process: predict alone, and a whole request's work.

    The second adds what the route does besides HTTP: parse the JSON body and check it against
    the contract, then score.
    """
    records = model.validator.invocations_body(json.loads(body), max_batch)

    def rate(call: Callable[[], object]) -> float:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            call()
            count += 1
        return count / (time.perf_counter() - started)

    return (
        rate(lambda: model.score(records)),
        rate(lambda: model.score(model.validator.invocations_body(json.loads(body), max_batch))),
    )


def _footer(
    ready: dict[str, float],
    rates: dict[int, tuple[float, float]],
    served: LoadResult | None,
    workers: int,
) -> list[str]:
    """Time to ready, the in-process limits, and how close the service comes to them."""
    lines = [
        "",
        f"Time to ready: ours {ready.get('ours', float('nan')):.1f} s, "
        f"mlflow {ready.get('mlflow', float('nan')):.1f} s.",
        "",
        f"In-process, one core: predict {rates[1][0]:.0f} calls/s on one record and "
        f"{rates[100][0]:.0f} on 100; with JSON parsing and the contract check "
        f"{rates[1][1]:.0f} and {rates[100][1]:.0f}.",
    ]
    if served is not None:
        limit = workers * rates[1][0]
        lines.append(
            f"One record at 8 connections, {workers} workers: ours is "
            f"{100 * served.requests_per_second / limit:.0f}% of in-process predict x "
            f"{workers} ({limit:.0f} calls/s) and "
            f"{100 * served.requests_per_second / (workers * rates[1][1]):.0f}% of "
            "in-process request work."
        )
    return lines


def main() -> None:
    """Run the benchmark and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per load run")
    parser.add_argument("--connections", default="1,8,32")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of each server")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--only", choices=["ours", "mlflow"], default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    settings = get_settings()
    bodies, model = request_bodies(settings)
    generator = "wrk" if shutil.which("wrk") else "asyncio client (bench.py)"
    load = run_wrk if shutil.which("wrk") else run_asyncio
    connections = [int(c) for c in args.connections.split(",")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SERVING_POLL_SECONDS": "0"}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")  # mlflow shells out to uvicorn
    servers = {
        "ours": (
            [sys.executable, "-m", PACKAGE, "serve", "--workers", str(args.workers)],
            "/ready",
        ),
        "mlflow": (
            [sys.executable, "-m", "mlflow", "models", "serve", "-m",
             f"models:/{settings.model_name}@champion", "--env-manager", "local",
             "-h", HOST, "-w", str(args.workers)],
            "/ping",
        ),
    }  # fmt: skip
    results: dict[tuple[str, int, int], LoadResult] = {}
    ready: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        for name, (command, probe) in servers.items():
            if args.only and name != args.only:
                continue
            port = free_port()
            extra = ["--port", str(port)] if name == "ours" else ["-p", str(port)]
            server_env = {**env, "PREDICTION_LOG_DIR": str(Path(scratch) / "log")}
            process = start([*command, *extra], server_env, Path(scratch) / f"{name}.log")
            try:
                ready[name] = wait_ready(f"http://{HOST}:{port}{probe}", timeout=120)
                url = f"http://{HOST}:{port}/invocations"
                for rows, body in bodies.items():
                    load(url, body, 2, 1.0)  # warm-up
                    for count in connections:
                        results[name, rows, count] = load(url, body, count, args.seconds)
                        print(name, rows, count, results[name, rows, count], flush=True)
            finally:
                stop(process)
    lines = [
        f"Load generator: {generator}; {args.seconds:.0f} s per run; {args.workers} workers per "
        f"server; `/invocations` with `dataframe_split`; model {model.name} v{model.version} "
        f"({'fast path' if model.verification.used_fast_path else 'pipeline'}).",
        "",
        "| rows | connections | ours req/s | mlflow req/s | ratio | ours p50 / p99 ms "
        "| mlflow p50 / p99 ms | p99 ratio | non-2xx (ours / mlflow) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows in bodies:
        for count in connections:
            ours, peer = results.get(("ours", rows, count)), results.get(("mlflow", rows, count))
            if ours is None or peer is None:
                continue
            lines.append(
                f"| {rows} | {count} | {ours.requests_per_second:.0f} | "
                f"{peer.requests_per_second:.0f} | "
                f"{ours.requests_per_second / max(peer.requests_per_second, 1e-9):.1f}x | "
                f"{ours.p50_ms:.1f} / {ours.p99_ms:.1f} | {peer.p50_ms:.1f} / {peer.p99_ms:.1f} | "
                f"{p99_comparison(ours.p99_ms, peer.p99_ms)} | "
                f"{ours.non_2xx} / {peer.non_2xx} |"
            )
    limit = settings.serving_max_batch
    rates = {rows: in_process_rates(model, body, limit) for rows, body in bodies.items()}
    lines += _footer(ready, rates, results.get(("ours", 1, 8)), args.workers)
    table = "\n".join(lines)
    print(table)
    if args.output:
        args.output.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
