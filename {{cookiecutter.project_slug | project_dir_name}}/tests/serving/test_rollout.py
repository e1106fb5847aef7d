"""Rollout without restarts: reload, polling, shadow, canary, and a registry that comes back."""

import shutil
import time
from dataclasses import replace
from pathlib import Path

from fastapi.testclient import TestClient
from serving_support import (
    MODEL_NAME,
    Registry,
    a_record,
    preloaded_state,
    registry_client,
    settings_for,
)

from {{ cookiecutter.package_name }}.prediction_log import read_prediction_log
from {{ cookiecutter.package_name }}.registry import CHALLENGER, CHAMPION
from {{ cookiecutter.package_name }}.serving.app import create_app


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def move_champion(folder: Path, version: str) -> None:
    registry_client(settings_for(folder)).set_registered_model_alias(MODEL_NAME, CHAMPION, version)


def test_admin_reload_picks_up_a_moved_champion(registry: Registry, loaded: dict, tmp_path) -> None:
    folder = registry.copy_to(tmp_path)
    settings = settings_for(folder, prediction_log_enabled=False)
    record = a_record(registry.contract)
    with TestClient(create_app(settings, preloaded_state(settings, loaded))) as client:
        assert client.post("/predict", json=record).json()["model"]["version"] == registry.champion
        unchanged = client.post("/admin/reload").json()
        assert unchanged["changed"] == []
        move_champion(folder, registry.challenger)
        reloaded = client.post("/admin/reload")
        assert reloaded.status_code == 200
        assert reloaded.json()["changed"] == [CHAMPION]
        answer = client.post("/predict", json=record)
        assert answer.json()["model"]["version"] == registry.challenger
        assert answer.headers["X-Model-Version"] == registry.challenger
        assert client.get("/model").json()["champion"]["version"] == registry.challenger


def test_polling_picks_up_a_moved_champion(registry: Registry, loaded: dict, tmp_path) -> None:
    folder = registry.copy_to(tmp_path)
    settings = settings_for(folder, prediction_log_enabled=False, serving_poll_seconds=0.5)
    with TestClient(create_app(settings, preloaded_state(settings, loaded))) as client:
        time.sleep(0.7)  # the poller is running
        move_champion(folder, registry.challenger)
        wait_for(lambda: client.get("/ready").json()["version"] == registry.challenger)


def test_shadow_logs_the_challenger_without_returning_it(
    registry: Registry, loaded: dict, tmp_path
) -> None:
    settings = settings_for(
        registry.folder, prediction_log_dir=tmp_path / "log", serving_shadow=True
    )
    state = preloaded_state(settings, loaded, challenger=True)
    with TestClient(create_app(settings, state)) as client:
        response = client.post(
            "/predict", json=[a_record(registry.contract)] * 3, headers={"X-Request-ID": "shadowed"}
        )
        assert response.json()["model"]["version"] == registry.champion
        assert response.json()["model"]["alias"] == CHAMPION
    log = read_prediction_log(tmp_path / "log", include_shadow=True)
    assert len(log) == 6
    shadow = log[log["shadow"]]
    assert set(shadow["model_version"]) == {registry.challenger}
    assert set(shadow["request_id"]) == {"shadowed"}
    assert set(log[~log["shadow"]]["model_version"]) == {registry.champion}


class BrokenPredictor:
    """A challenger whose scoring raises (a model that loaded but cannot score)."""

    classes = ("bad", "good")

    def predict_proba(self, records: object) -> None:
        raise ValueError(f"the challenger cannot score {records!r}")


def test_a_failing_shadow_is_counted_and_the_champion_still_answers(
    registry: Registry, loaded: dict, tmp_path
) -> None:
    settings = settings_for(
        registry.folder, prediction_log_dir=tmp_path / "log", serving_shadow=True
    )
    state = preloaded_state(settings, loaded)
    state.challenger = replace(loaded[CHALLENGER], predictor=BrokenPredictor())
    app = create_app(settings, state)
    with TestClient(app) as client:
        response = client.post("/predict", json=[a_record(registry.contract)] * 2)
        assert response.status_code == 200
        assert response.json()["model"]["version"] == registry.champion
    assert app.state.prediction_log.failed_jobs == 1
    assert "shadow_errors_total 1.0" in app.state.metrics.exposition().decode()
    log = read_prediction_log(tmp_path / "log", include_shadow=True)
    assert len(log) == 2  # the champion's answers are logged; the failed shadow adds none
    assert not log["shadow"].any()


def test_canary_share_goes_to_the_challenger(registry: Registry, loaded: dict) -> None:
    record = a_record(registry.contract)
    for fraction, expected in ((1.0, registry.challenger), (0.0, registry.champion)):
        settings = settings_for(
            registry.folder, prediction_log_enabled=False, serving_canary_fraction=fraction
        )
        state = preloaded_state(settings, loaded, challenger=True)
        with TestClient(create_app(settings, state)) as client:
            versions = {
                client.post("/predict", json=record).json()["model"]["version"] for _ in range(5)
            }
        assert versions == {expected}
    settings = settings_for(
        registry.folder, prediction_log_enabled=False, serving_canary_fraction=0.5
    )
    with TestClient(
        create_app(settings, preloaded_state(settings, loaded, challenger=True))
    ) as client:
        answers = [
            client.post("/predict", json=record, headers={"X-Request-ID": f"id-{i}"}).json()
            for i in range(40)
        ]
        versions = {answer["model"]["version"] for answer in answers}
        assert versions == {registry.champion, registry.challenger}
        # The same request id always goes to the same version.
        again = client.post("/predict", json=record, headers={"X-Request-ID": "id-0"}).json()
        assert again["model"]["version"] == answers[0]["model"]["version"]


def test_a_worker_accepts_requests_only_once_its_model_is_loaded(registry: Registry) -> None:
    settings = settings_for(registry.folder, prediction_log_enabled=False)
    # The lifespan returns (uvicorn starts accepting) only after the first load.
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 200
        assert client.post("/predict", json=a_record(registry.contract)).status_code == 200


def test_without_a_champion_health_answers_at_once_and_ready_names_the_missing_step(
    registry: Registry, tmp_path
) -> None:
    """The default startup wait (60 s) is for loading a model, not for one that is not there."""
    folder = registry.copy_to(tmp_path)
    client = registry_client(settings_for(folder))
    client.delete_registered_model_alias(MODEL_NAME, CHAMPION)
    cases = [
        ("challenger", f"challenger v{registry.challenger} is waiting; run `make promote`"),
        ("neither", "no champion and no challenger: run `make register`, then `make promote`"),
    ]
    for case, hint in cases:
        if case == "neither":
            client.delete_registered_model_alias(MODEL_NAME, CHALLENGER)
        settings = settings_for(folder, prediction_log_enabled=False)
        started = time.monotonic()
        with TestClient(create_app(settings)) as served:
            assert served.get("/health").status_code == 200
            assert time.monotonic() - started < 10
            ready = served.get("/ready")
            assert ready.status_code == 503
            assert hint in ready.json()["reason"], ready.json()
    settings = settings_for(tmp_path / "empty", prediction_log_enabled=False)
    with TestClient(create_app(settings)) as served:
        assert "make all" in served.get("/ready").json()["reason"]


def test_unreachable_registry_then_recovery(registry: Registry, tmp_path) -> None:
    settings = settings_for(
        tmp_path,
        prediction_log_enabled=False,
        serving_retry_seconds=0.1,
        serving_startup_wait_seconds=0.3,  # then the worker starts anyway and answers 503
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        wait_for(lambda: "not found" in client.get("/ready").json()["reason"])
        not_ready = client.get("/ready")
        assert not_ready.status_code == 503
        assert client.post("/predict", json=a_record(registry.contract)).status_code == 503
        shutil.copy(registry.folder / "mlflow.db", tmp_path / "mlflow.db")  # the registry is back
        wait_for(lambda: client.get("/ready").status_code == 200)
        assert client.post("/predict", json=a_record(registry.contract)).status_code == 200
