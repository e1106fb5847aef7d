"""Bad input gets a 4xx whose message names the field; never a 500. Plus a schema-driven fuzz."""

import json

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from serving_support import (
    Registry,
    a_record,
    bounded_features,
    preloaded_state,
    project_contract,
    settings_for,
)

from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.state import ServingState

JSON = {"content-type": "application/json"}


def post(client: TestClient, body: object, path: str = "/predict") -> tuple[int, dict]:
    response = client.post(path, content=json.dumps(body), headers=JSON)
    return response.status_code, response.json()


def first_numeric(registry: Registry) -> str:
    return registry.contract.numeric_features[0]


def first_categorical(registry: Registry) -> str:
    for name in registry.contract.categorical_features:
        if registry.contract.column(name).accepted_values:
            return name
    pytest.skip("the contract has no categorical feature with accepted values")


def required_feature(registry: Registry) -> str:
    contract = registry.contract
    for name in contract.feature_columns:
        if not contract.column(name).nullable:
            return name
    pytest.skip("the contract has no feature that must not be null")


def test_missing_field(client: TestClient, registry: Registry) -> None:
    name = required_feature(registry)
    record = a_record(registry.contract)
    del record[name]
    status, body = post(client, record)
    assert status == 422
    assert body["errors"][0]["field"] == f"records[0].{name}"
    assert "required" in body["message"]


@pytest.mark.parametrize("value", ["12", True, [1], {"a": 1}])
def test_wrong_type(client: TestClient, registry: Registry, value: object) -> None:
    name = first_numeric(registry)
    status, body = post(
        client, [a_record(registry.contract), a_record(registry.contract, **{name: value})]
    )
    assert status == 422
    assert body["errors"][0]["field"] == f"records[1].{name}"


@pytest.mark.parametrize(("name", "value", "bound"), bounded_features(project_contract()))
def test_a_value_outside_the_contracts_bounds_is_refused(
    client: TestClient, registry: Registry, name: str, value: float, bound: str
) -> None:
    status, body = post(client, a_record(registry.contract, **{name: value}))
    assert status == 422
    assert body["errors"][0]["field"] == f"records[0].{name}"
    assert bound in body["errors"][0]["message"]


def test_unknown_field(client: TestClient, registry: Registry) -> None:
    status, body = post(client, a_record(registry.contract, colour="red"))
    assert status == 422
    assert body["errors"][0]["field"] == "records[0].colour"
    assert "unknown field" in body["message"]


def test_the_label_is_not_an_input(client: TestClient, registry: Registry) -> None:
    label = registry.contract.label_column
    status, body = post(
        client, a_record(registry.contract, **{label: registry.contract.label_values[0]})
    )
    assert status == 422
    assert f"records[0].{label}" in body["message"]


def test_out_of_contract_category(client: TestClient, registry: Registry) -> None:
    name = first_categorical(registry)
    status, body = post(client, a_record(registry.contract, **{name: "not-a-value"}))
    assert status == 422
    assert body["errors"][0]["field"] == f"records[0].{name}"
    accepted = registry.contract.column(name).accepted_values or ()
    assert repr(accepted[0]) in body["message"]  # the message lists what is accepted


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(client: TestClient, registry: Registry, token: str) -> None:
    name = first_numeric(registry)
    text = json.dumps(a_record(registry.contract, **{name: 1.0})).replace("1.0", token, 1)
    response = client.post("/predict", content=text, headers=JSON)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == f"records[0].{name}"


def test_null_in_a_required_feature(client: TestClient, registry: Registry) -> None:
    name = required_feature(registry)
    status, body = post(client, a_record(registry.contract, **{name: None}))
    assert status == 422
    assert body["errors"][0]["field"] == f"records[0].{name}"


def test_null_in_a_nullable_feature_is_imputed(client: TestClient, registry: Registry) -> None:
    nullable = [
        n for n in registry.contract.feature_columns if registry.contract.column(n).nullable
    ]
    if not nullable:
        pytest.skip("the contract has no nullable feature")
    status, body = post(client, a_record(registry.contract, **{nullable[0]: None}))
    assert status == 200, body


def test_empty_list(client: TestClient) -> None:
    status, body = post(client, [])
    assert status == 422
    assert "at least one record" in body["message"]


def test_oversized_batch(client: TestClient, registry: Registry) -> None:
    status, body = post(client, [a_record(registry.contract)] * 51)  # the fixture allows 50
    assert status == 413
    assert "51 records exceed the limit of 50" in body["message"]


def test_oversized_body(client: TestClient, registry: Registry) -> None:
    status, body = post(client, a_record(registry.contract, padding="x" * 30_000))
    assert status == 413
    assert "SERVING_MAX_BODY_BYTES" in body["message"]


@pytest.mark.parametrize("text", ["{bad", '{"a": 1', "", "[1, 2,]", "\xff"])
def test_malformed_json(client: TestClient, text: str) -> None:
    response = client.post("/predict", content=text.encode("latin-1"), headers=JSON)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


def test_deeply_nested_json(client: TestClient) -> None:
    response = client.post("/predict", content="[" * 5000 + "]" * 5000, headers=JSON)
    assert response.status_code in {400, 422}


@pytest.mark.parametrize("body", ['"text"', "42", "null", "true"])
def test_body_that_is_not_records(client: TestClient, body: str) -> None:
    response = client.post("/predict", content=body, headers=JSON)
    assert response.status_code == 422
    assert "one record" in response.json()["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type(client: TestClient, registry: Registry, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(
        "/predict", content=json.dumps(a_record(registry.contract)), headers=headers
    )
    assert response.status_code == 415
    assert "Content-Type" in response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"records": []},
        {"dataframe_split": {}, "instances": []},
        {"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}},
        {"dataframe_split": {"columns": "a", "data": []}},
        {"instances": {"a": [1, 2], "b": [1]}},
        {"dataframe_records": "nope"},
        [1, 2],
    ],
)
def test_invocations_bad_formats(client: TestClient, body: object) -> None:
    status, answer = post(client, body, "/invocations")
    assert status == 422, answer
    assert answer["errors"][0]["field"]


def test_invocations_names_the_bad_field(client: TestClient, registry: Registry) -> None:
    name = first_numeric(registry)
    bad = a_record(registry.contract, **{name: "x"})
    status, body = post(client, {"dataframe_records": [bad]}, "/invocations")
    assert status == 422
    assert body["errors"][0]["field"] == f"dataframe_records[0].{name}"


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/nope").status_code == 404
    assert client.get("/predict").status_code == 405


def test_not_ready_is_503_with_the_reason(registry: Registry) -> None:
    settings = settings_for(registry.folder, prediction_log_enabled=False)
    state = ServingState(settings)
    state.reason = "model not loaded: registry down"
    app = create_app(settings, state)
    # No lifespan: nothing loads, the state stays empty.
    client = TestClient(app)
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["reason"] == "model not loaded: registry down"
    response = client.post("/predict", json=a_record(registry.contract))
    assert response.status_code == 503
    assert "registry down" in response.json()["message"]


# The fuzz: every operation of the OpenAPI document (whose request schema is the served model's
# contract), with bounded examples per operation, in-process. Any 5xx fails. (Driven through
# Hypothesis directly: schemathesis' lazy pytest fixture does not support pytest 9 yet.)
def test_fuzz_never_a_server_error(registry: Registry, loaded: dict) -> None:
    settings_ = settings_for(registry.folder, prediction_log_enabled=False, serving_max_batch=20)
    app = create_app(settings_, preloaded_state(settings_, loaded))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.path for operation in operations} >= {"/predict", "/invocations", "/model"}
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call()
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.path}: {response.status_code} {response.text}"
                )

        call()
    assert not failures, failures[:5]
