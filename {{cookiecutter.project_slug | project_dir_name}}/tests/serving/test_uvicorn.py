"""The real thing: `python -m <package> serve` in its own process, over HTTP on 127.0.0.1."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message

from serving_support import Registry, a_record

import {{ cookiecutter.package_name }} as package


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, body: object | None = None) -> tuple[int, dict, Message]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        url, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def test_served_by_uvicorn_over_http(registry: Registry, tmp_path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PROJECT_DIR": str(registry.folder),
        "MLFLOW_TRACKING_URI": f"sqlite:///{registry.folder / 'mlflow.db'}",
        "MODEL_NAME": "serving_test_model",
        "PREDICTION_LOG_DIR": str(tmp_path / "log"),
        "SERVING_POLL_SECONDS": "0",
        "SERVING_WORKERS": "2",
    }
    log_file = tmp_path / "serve.log"
    output = log_file.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", package.__name__, "serve", "--port", str(port)],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the workers stop with it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_file.read_text(encoding="utf-8")
            try:
                if call(f"{base}/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready in 60 s"
            time.sleep(0.2)
        status, body, headers = call(f"{base}/predict", a_record(registry.contract))
        assert status == 200, body
        assert body["model"]["version"] == registry.champion
        assert headers["X-Model-Version"] == registry.champion  # case-insensitive lookup
        status, body, _ = call(f"{base}/predict", [])
        assert status == 422
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        output.close()
