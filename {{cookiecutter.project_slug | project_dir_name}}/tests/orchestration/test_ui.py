"""`make dagster` serves the UI on 127.0.0.1 with the whole asset graph loaded."""

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest
from processes import free_port, started

from {{ cookiecutter.package_name }}.contract import find_contract_model

pytestmark = pytest.mark.slow

PROJECT_DIR = Path(__file__).resolve().parents[2]
QUERY = "{ assetNodes { assetKey { path } } }"


def _asset_keys(base: str) -> list[str]:
    request = urllib.request.Request(  # noqa: S310 (a local http URL)
        f"{base}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        nodes = json.load(response)["data"]["assetNodes"]
    return ["/".join(node["assetKey"]["path"]) for node in nodes]


def test_the_ui_starts_and_shows_the_asset_graph(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env |= {"DAGSTER_PORT": str(port), "DAGSTER_HOME": str(tmp_path)}
    log = tmp_path / "dagster.log"
    # `dagster dev` starts several processes: `started` stops its whole group.
    with started(["make", "dagster"], env, log, cwd=PROJECT_DIR) as server:
        keys: list[str] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None:
            try:
                keys = _asset_keys(base)
                break
            except (OSError, KeyError, ValueError):
                time.sleep(2)
        assert keys, f"the UI did not answer on {base}:\n{log.read_text(encoding='utf-8')[-3000:]}"
        assert find_contract_model(PROJECT_DIR / "transform" / "models")[1] in keys
        assert {"model_run", "champion", "monitoring_report"} <= set(keys)
        with urllib.request.urlopen(f"{base}/asset-groups", timeout=10) as page:  # noqa: S310
            assert page.status == 200
            assert "<html" in page.read().decode().lower()
