"""Every endpoint of the service, answered by an app serving a real registered model."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from serving_support import MODEL_NAME, Registry, a_record, preloaded_state, settings_for

from {{ cookiecutter.package_name }} import prediction_log
from {{ cookiecutter.package_name }}.config import ConfigError, Settings
from {{ cookiecutter.package_name }}.prediction_log import read_prediction_log
from {{ cookiecutter.package_name }}.registry import CHAMPION
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.loader import LoadedModel, frame_to_records
from {{ cookiecutter.package_name }}.tracking import load_sklearn_model


def test_health_answers_without_a_model(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_names_the_served_version(client: TestClient, registry: Registry) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "reason": "ready",
        "model": MODEL_NAME,
        "version": registry.champion,
    }


def test_model_shows_version_lineage_and_contract(client: TestClient, registry: Registry) -> None:
    champion = client.get("/model").json()["champion"]
    assert champion["name"] == MODEL_NAME
    assert champion["version"] == registry.champion
    assert champion["run_id"]
    assert champion["data_version"] == "md5:hist_gradient_boosting"
    assert champion["fast_path"] is True, champion["verification"]
    assert "held-out rows" in champion["verification"]
    names = [column["name"] for column in champion["contract"]["columns"]]
    assert names == registry.contract.column_names


def test_predict_one_record(client: TestClient, registry: Registry, loaded: dict) -> None:
    record = a_record(registry.contract)
    response = client.post("/predict", json=record, headers={"X-Request-ID": "req-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == "req-1"
    assert response.headers["X-Request-ID"] == "req-1"
    assert body["model"] == {"name": MODEL_NAME, "version": registry.champion, "alias": CHAMPION}
    assert response.headers["X-Model-Version"] == registry.champion
    (prediction,) = body["predictions"]
    champion: LoadedModel = loaded[CHAMPION]
    assert set(prediction["probabilities"]) == set(champion.classes)
    assert prediction["score"] == pytest.approx(
        prediction["probabilities"][champion.positive_class]
    )
    assert prediction["prediction"] == max(
        prediction["probabilities"], key=prediction["probabilities"].get
    )


def test_predictions_equal_the_pipeline(
    client: TestClient, registry: Registry, loaded: dict
) -> None:
    contract = registry.contract
    rows = registry.table.head(40)
    response = client.post("/predict", json=frame_to_records(rows, contract.feature_columns))
    assert response.status_code == 200, response.text
    served = np.array([p["score"] for p in response.json()["predictions"]])
    champion: LoadedModel = loaded[CHAMPION]
    pipeline = load_sklearn_model(f"models:/{champion.name}/{champion.version}")
    positive = list(pipeline.classes_).index(champion.positive_class)
    expected = pipeline.predict_proba(rows[contract.feature_columns])[:, positive]
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-9)


def _two_records(registry: Registry) -> list[dict[str, object]]:
    """Two valid records that differ in a numeric feature."""
    name = registry.contract.numeric_features[0]
    return [a_record(registry.contract), a_record(registry.contract, **{name: 0})]


def test_invocations_accepts_every_mlflow_format(client: TestClient, registry: Registry) -> None:
    records = _two_records(registry)
    columns = list(records[0])
    expected = [
        p["prediction"] for p in client.post("/predict", json=records).json()["predictions"]
    ]
    bodies = [
        {"dataframe_split": {"columns": columns, "data": [list(r.values()) for r in records]}},
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": records},
        {"instances": {name: [r[name] for r in records] for name in columns}},
    ]
    for body in bodies:
        response = client.post("/invocations", json=body)
        assert response.status_code == 200, (body, response.text)
        assert response.json() == {"predictions": expected}


def test_invocations_accepts_csv_as_mlflows_scoring_server_does(
    client: TestClient, registry: Registry
) -> None:
    records = _two_records(registry)
    expected = [
        p["prediction"] for p in client.post("/predict", json=records).json()["predictions"]
    ]
    columns = list(records[0])

    def csv(rows: list[dict[str, object]]) -> str:
        lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
        return "\n".join(lines) + "\n"

    response = client.post(
        "/invocations", content=csv(records), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}

    name = registry.contract.numeric_features[0]
    broken = csv([records[0], {**records[1], name: "forty"}])
    refused = client.post("/invocations", content=broken, headers={"content-type": "text/csv"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == f"csv[1].{name}"


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    client.post("/predict", json={"not": "valid"})
    text = client.get("/metrics").text
    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_errors_total",
        "http_requests_in_flight",
        "predictions_total",
        "model_info",
        "model_ready 1.0",
    ):
        assert name in text
    assert 'route="/predict",status="422"' in text


def test_docs_work_offline(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200
    redoc = client.get("/redoc")
    assert "/docs/static/redoc.standalone.js" in redoc.text
    assert "fonts.googleapis" not in redoc.text


def test_openapi_declares_the_api_key_only_where_it_is_checked(
    registry: Registry, loaded: dict
) -> None:
    def security(document: dict) -> list:
        operations = [op for path in document["paths"].values() for op in path.values()]
        return [op["security"] for op in operations if "security" in op]

    settings = settings_for(registry.folder, prediction_log_enabled=False)
    with TestClient(create_app(settings, preloaded_state(settings, loaded))) as open_client:
        document = open_client.get("/openapi.json").json()
        assert security(document) == []
        assert "securitySchemes" not in document.get("components", {})
        assert "401" not in document["paths"]["/predict"]["post"]["responses"]
    keyed = settings_for(registry.folder, api_key="s3cret-key", prediction_log_enabled=False)
    with TestClient(create_app(keyed, preloaded_state(keyed, loaded))) as keyed_client:
        document = keyed_client.get("/openapi.json").json()
        assert len(security(document)) == 4  # /predict, /invocations, /model, /admin/reload
        assert "401" in document["paths"]["/predict"]["post"]["responses"]


def test_openapi_request_schema_follows_the_contract(
    client: TestClient, registry: Registry
) -> None:
    document = client.get("/openapi.json").json()
    schema = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    record = schema["anyOf"][0]
    contract = registry.contract
    assert record["additionalProperties"] is False
    required = {c for c in contract.feature_columns if not contract.column(c).nullable}
    assert set(record["required"]) == required
    for name in contract.categorical_features:
        accepted = contract.column(name).accepted_values
        if accepted:
            assert record["properties"][name]["enum"] == list(accepted)
    assert contract.label_column not in record["properties"]
    for name in contract.numeric_features:  # the bounds the service enforces, declared
        declared = record["properties"][name]
        declared = declared["anyOf"][0] if "anyOf" in declared else declared  # nullable: T | None
        column = contract.column(name)
        assert declared.get("minimum") == column.minimum, name
        assert declared.get("maximum") == column.maximum, name
    invocations = document["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(invocations) == {"application/json", "text/csv"}


def test_predictions_are_logged_off_the_request_path(
    registry: Registry, loaded: dict, tmp_path
) -> None:
    settings = settings_for(registry.folder, prediction_log_dir=tmp_path / "log")
    with TestClient(create_app(settings, preloaded_state(settings, loaded))) as client:
        record = a_record(registry.contract, **{registry.contract.id_column: 77})
        client.post("/predict", json=[record, record], headers={"X-Request-ID": "logged-1"})
    log = read_prediction_log(tmp_path / "log")  # the app's shutdown flushed the queue
    assert len(log) == 2
    row = log.iloc[0]
    assert row["request_id"] == "logged-1"
    assert row["model_version"] == registry.champion
    assert row["entity_id"] == "77"
    assert row["source"] == "api"
    assert not row["shadow"]
    assert row["latency_ms"] > 0
    for name in registry.contract.feature_columns:
        assert name in log.columns
    assert {"prediction", "score", "timestamp"} <= set(log.columns)


def test_a_failed_log_write_is_counted_as_dropped(
    registry: Registry, loaded: dict, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(prediction_log, "write_log_rows", disk_full)
    settings = settings_for(registry.folder, prediction_log_dir=tmp_path / "log")
    app = create_app(settings, preloaded_state(settings, loaded))
    with TestClient(app) as client:
        record = a_record(registry.contract)
        assert client.post("/predict", json=[record, record, record]).status_code == 200
    # The app's shutdown flushed the queue: the failed write is counted, not lost silently.
    assert app.state.prediction_log.failed_writes == 1
    assert "prediction_log_dropped_total 3.0" in app.state.metrics.exposition().decode()


def test_api_key_is_required_when_set(registry: Registry, loaded: dict) -> None:
    settings = settings_for(registry.folder, api_key="s3cret-key", prediction_log_enabled=False)
    record = a_record(registry.contract)
    with TestClient(create_app(settings, preloaded_state(settings, loaded))) as client:
        assert client.post("/predict", json=record).status_code == 401
        wrong = client.post("/predict", json=record, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        assert "X-API-Key" in wrong.json()["message"]
        assert (
            client.post("/predict", json=record, headers={"X-API-Key": "s3cret-key"}).status_code
            == 200
        )
        assert client.post("/admin/reload").status_code == 401
        assert client.get("/model").status_code == 401
        for open_route in ("/health", "/ready", "/metrics"):
            assert client.get(open_route).status_code == 200


def test_outside_local_an_api_key_is_required(registry: Registry) -> None:
    settings = settings_for(registry.folder, environment="staging")
    with pytest.raises(ConfigError, match="API_KEY"):
        create_app(settings)


def test_outside_local_the_service_needs_a_tracking_server_or_a_bundle(
    registry: Registry,
) -> None:
    """The project's own SQLite registry is a laptop's: the service would serve nothing there."""
    settings = settings_for(registry.folder, environment="staging", api_key="s3cret-key")
    with pytest.raises(ConfigError, match=r"MLFLOW_TRACKING_URI is not set.*SERVING_MODEL_URI"):
        create_app(settings)


def test_placeholder_secrets_are_refused_outside_local(tmp_path) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(project_dir=tmp_path, environment="prod", api_key="changethis")
    assert Settings(project_dir=tmp_path, environment="local", api_key="changethis")
