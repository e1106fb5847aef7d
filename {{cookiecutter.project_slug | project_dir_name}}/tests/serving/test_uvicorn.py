"""The real thing: `python -m <package> serve` in its own process, over HTTP on 127.0.0.1."""

import os
import sys

from processes import serving
from serving_support import Registry, a_record, call


def test_served_by_uvicorn_over_http(registry: Registry, tmp_path) -> None:
    env = {
        **os.environ,
        "PROJECT_DIR": str(registry.folder),
        "MLFLOW_TRACKING_URI": f"sqlite:///{registry.folder / 'mlflow.db'}",
        "MODEL_NAME": "serving_test_model",
        "PREDICTION_LOG_DIR": str(tmp_path / "log"),
        "SERVING_POLL_SECONDS": "0",
        "SERVING_WORKERS": "2",
    }
    with serving(sys.executable, env, tmp_path / "serve.log") as base:
        status, body, headers = call(f"{base}/predict", a_record(registry.contract))
        assert status == 200, body
        assert body["model"]["version"] == registry.champion
        assert headers["X-Model-Version"] == registry.champion  # case-insensitive lookup
        status, body, _ = call(f"{base}/predict", [])
        assert status == 422
