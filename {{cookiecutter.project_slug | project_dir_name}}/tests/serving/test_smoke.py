"""The deploy smoke test (`make smoke-test`) against the real service over HTTP."""

import os
import sys
import time
from collections.abc import Iterator

import pytest
from processes import free_port, serving
from serving_support import Registry

from {{ cookiecutter.package_name }}.contract import FeatureContract
from {{ cookiecutter.package_name }}.smoke import Service, SmokeTestFailedError, smoke_test

API_KEY = "smoke-test-key"
CANARY = 0.25


@pytest.fixture(scope="module")
def service(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m <package> serve` with a key and a canary, as a deployment would run it."""
    folder = tmp_path_factory.mktemp("smoke")
    env = {
        **os.environ,
        "PROJECT_DIR": str(registry.folder),
        "MLFLOW_TRACKING_URI": f"sqlite:///{registry.folder / 'mlflow.db'}",
        "MODEL_NAME": "serving_test_model",
        "PREDICTION_LOG_DIR": str(folder / "log"),
        "SERVING_POLL_SECONDS": "0",
        "SERVING_CANARY_FRACTION": str(CANARY),
        "API_KEY": API_KEY,
    }
    with serving(sys.executable, env, folder / "serve.log") as base:
        # Ready means the champion is loaded; the canary's challenger follows it.
        wait_for_challenger(Service(base, API_KEY))
        yield base


def wait_for_challenger(service: Service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (service.get("/model").body or {}).get("challenger"):
        assert time.monotonic() < deadline, "the challenger was not loaded"
        time.sleep(0.1)


def test_a_healthy_deployment_passes_every_check(service: str, registry: Registry) -> None:
    checks = smoke_test(service, registry.contract, api_key=API_KEY, canary_fraction=CANARY)
    assert [check.name for check in checks] == [
        "ready",
        "contract",
        "canary",
        "prediction",
        "refusal",
    ]
    assert f"to challenger v{registry.challenger}" in checks[2].detail
    missing = registry.contract.feature_columns[0]
    assert checks[4].detail == f"HTTP 422 naming {missing}"


def test_a_canary_share_other_than_the_deployed_one_fails(service: str, registry: Registry) -> None:
    with pytest.raises(SmokeTestFailedError) as failed:
        smoke_test(service, registry.contract, api_key=API_KEY, canary_fraction=0.1)
    assert "canary: canary_fraction is 0.25, 0.1 was deployed" in str(failed.value)


def test_a_service_of_another_contract_fails_and_says_what_to_do(
    service: str, registry: Registry
) -> None:
    first = registry.contract.feature_columns[0]
    columns = tuple(
        column.model_copy(update={"name": "renamed_feature"}) if column.name == first else column
        for column in registry.contract.columns
    )
    other = FeatureContract(model=registry.contract.model, columns=columns)
    with pytest.raises(SmokeTestFailedError) as failed:
        smoke_test(service, other, api_key=API_KEY)
    message = str(failed.value)
    assert "serves other features than this commit's contract" in message
    assert "renamed_feature" in message
    assert "prediction: HTTP 422" in message  # the record of the other contract is refused


def test_the_key_is_needed_to_read_the_served_contract(service: str, registry: Registry) -> None:
    with pytest.raises(SmokeTestFailedError, match="contract: GET /model: HTTP 401"):
        smoke_test(service, registry.contract, api_key="not-the-key", canary_fraction=CANARY)


def test_nothing_listening_is_not_ready_and_a_bad_url_is_refused(registry: Registry) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SmokeTestFailedError, match="ready: not ready after 0 s: no answer"):
        smoke_test(url, registry.contract, wait_seconds=0)
    with pytest.raises(SmokeTestFailedError, match="must start with http:// or https://"):
        smoke_test("file:///etc/passwd", registry.contract)
