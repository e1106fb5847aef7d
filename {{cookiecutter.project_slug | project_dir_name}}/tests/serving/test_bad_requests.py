"""Bad input gets a 4xx whose message names the field; never a 500. Plus a schema-driven fuzz.

And the column-wise record checker (the fast path for batches) accepts exactly what the pydantic
record model accepts, with the same values: both are built from the same field rules, and the
tests at the end hold them to the same verdicts, on the project's contract and on a made-up one
that has the field kinds the project's may lack (free text, unbounded numbers, optional
categories). The model stays the judge of every refusal, so the messages above are its own.
"""

import json
import math
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from serving_support import (
    Registry,
    a_record,
    bounded_features,
    preloaded_state,
    project_contract,
    settings_for,
)

from {{ cookiecutter.package_name }}.contract import ContractColumn, FeatureContract
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.records import (
    COLUMN_WISE_FROM,
    EXACT_NUMBERS,
    MAX_TEXT_LENGTH,
    FieldRule,
    RecordValidator,
    field_rules,
)
from {{ cookiecutter.package_name }}.serving.schema import InputError
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


# The column-wise checker against the record model.


def made_up_contract() -> FeatureContract:
    """Every field kind: bounded and unbounded numbers, categories, free text, optional ones."""
    return FeatureContract(
        model="made_up",
        columns=(
            ContractColumn(name="key", data_type="bigint", role="id", nullable=False),
            ContractColumn(name="code", data_type="varchar", role="feature", nullable=False),
            ContractColumn(
                name="colour",
                data_type="varchar",
                role="feature",
                accepted_values=("red", "green", "1"),
            ),
            ContractColumn(name="amount", data_type="double", role="feature"),
            ContractColumn(
                name="visits",
                data_type="integer",
                role="feature",
                nullable=False,
                minimum=-2.5,
                maximum=10.5,
            ),
            ContractColumn(
                name="ratio",
                data_type="decimal(5,2)",
                role="feature",
                nullable=False,
                minimum=0,
                maximum=1,
            ),
            ContractColumn(name="big", data_type="hugeint", role="feature"),
            ContractColumn(name="group", data_type="varchar", role="sensitive"),
            ContractColumn(
                name="outcome", data_type="varchar", role="label", accepted_values=("no", "yes")
            ),
        ),
    )


CONTRACTS = {"project": project_contract(), "made_up": made_up_contract()}


class Verdicts:
    """The column checker's and the pydantic model's answers for the same records."""

    def __init__(self, contract: FeatureContract) -> None:
        self.validator = RecordValidator(contract)
        self.rules = field_rules(contract)
        self.model = TypeAdapter(list[self.validator.model])  # type: ignore[name-defined]

    def pydantic(self, records: list[Any]) -> list[dict[str, Any]] | None:
        try:
            return [record.model_dump() for record in self.model.validate_python(records)]
        except ValidationError:
            return None

    def assert_agree(self, records: list[Any]) -> list[dict[str, Any]] | None:
        """Both accept with the same values and types, or both do not; also as a table.

        The one exception by design: a number beyond ``EXACT_NUMBERS`` is left to pydantic.
        """
        expected = self.pydantic(records)
        checked = [self.validator.columns.records(records)]
        names = list(records[0]) if isinstance(records[0], dict) else []
        if all(isinstance(record, dict) and list(record) == names for record in records):
            checked.append(self.validator.columns.table(names, [list(r.values()) for r in records]))
        for accepted in checked:
            if accepted is None and expected is not None and inexact(records):
                continue
            assert typed(accepted) == typed(expected), records
        return expected


def inexact(records: list[Any]) -> bool:
    """True when a record holds a number beyond the range where ints and floats are exact."""
    return any(
        type(value) in {int, float} and EXACT_NUMBERS < abs(value) < math.inf
        for record in records
        if isinstance(record, dict)
        for value in record.values()
    )


def typed(records: list[dict[str, Any]] | None) -> list[list[tuple[str, type, Any]]] | None:
    """Records as (field, type, value) triples in order: ``3 == 3.0`` must not hide a difference."""
    if records is None:
        return None
    return [[(name, type(value), value) for name, value in record.items()] for record in records]


VERDICTS = {name: Verdicts(contract) for name, contract in CONTRACTS.items()}


def valid_values(rule: FieldRule) -> st.SearchStrategy[Any]:
    """Values the rule allows (numbers within the exactly representable range)."""
    if rule.kind == "category":
        return st.sampled_from(rule.accepted)
    if rule.kind == "text":
        return st.text(max_size=8)
    low = -EXACT_NUMBERS if rule.minimum is None else rule.minimum
    high = EXACT_NUMBERS if rule.maximum is None else rule.maximum
    whole = st.integers(math.ceil(low), math.floor(high))
    if rule.kind == "integer":
        return whole | whole.map(float)  # 3.0 is a whole number too
    return st.floats(low, high) | whole


def edge_values(rule: FieldRule, rules: tuple[FieldRule, ...]) -> list[Any]:
    """Values at the edges of what `rule` allows, on both sides: each kind of mistake, and more."""
    values: list[Any] = [None, True, False, "3", "", "x" * (MAX_TEXT_LENGTH + 1), [], [1.0]]
    values += [{"a": 1}, math.nan, math.inf, -math.inf, 0.5, -0.0, 3, 3.0, 2**31, 2.0**31]
    values += [EXACT_NUMBERS, -EXACT_NUMBERS, float(EXACT_NUMBERS), 2**63, 2.0**70, -(2.0**70)]
    values += [1e300, -1e300, 10**400, -(10**400)]  # beyond any float, or any 64-bit int
    for bound in (rule.minimum, rule.maximum):
        if bound is not None:
            values += [bound + step for step in (-1, -0.5, 0, 0.5, 1)] + [float(bound)]
    return values + [value for other in rules for value in other.accepted]


def any_values(rule: FieldRule, rules: tuple[FieldRule, ...]) -> st.SearchStrategy[Any]:
    """Values right or wrong for the rule."""
    return st.one_of(
        valid_values(rule),
        st.sampled_from(edge_values(rule, rules)),
        st.integers(-EXACT_NUMBERS, EXACT_NUMBERS),
        st.floats(-EXACT_NUMBERS, EXACT_NUMBERS),
        st.text(max_size=3),
    )


@st.composite
def bodies(draw: st.DrawFn, verdicts: Verdicts) -> list[Any]:
    """1-5 valid records, some optional fields left out, then up to two things changed."""
    rules = verdicts.rules
    optional = [rule.name for rule in rules if not rule.required]
    left_out = draw(st.sets(st.sampled_from(optional), max_size=2))
    records: list[Any] = [
        {rule.name: draw(valid_values(rule)) for rule in rules if rule.name not in left_out}
        for _ in range(draw(st.integers(1, 5)))
    ]
    for _ in range(draw(st.integers(0, 2))):
        index = draw(st.integers(0, len(records) - 1))
        rule = draw(st.sampled_from(rules))
        change = draw(st.sampled_from(["value", "value", "value", "drop", "unknown", "record"]))
        if not isinstance(records[index], dict):
            continue
        if change == "value":
            records[index][rule.name] = draw(any_values(rule, rules))
        elif change == "drop":
            records[index].pop(rule.name, None)
        elif change == "unknown":
            records[index][draw(st.sampled_from(["colour_", "outcome", "label", ""]))] = 1
        else:
            records[index] = draw(st.sampled_from([None, 1, "record", [], [records[index]]]))
    return records


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_the_column_checker_agrees_with_the_record_model(name: str) -> None:
    verdicts = VERDICTS[name]
    outcomes: list[bool] = []

    @given(records=bodies(verdicts))
    @settings(
        max_examples=600,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def agree(records: list[Any]) -> None:
        outcomes.append(verdicts.assert_agree(records) is not None)

    agree()
    # The generated bodies reached both verdicts, many times each.
    assert sum(outcomes) > 100, sum(outcomes)
    assert len(outcomes) - sum(outcomes) > 100, len(outcomes) - sum(outcomes)


def a_field(verdicts: Verdicts, contract: FeatureContract) -> FieldRule:
    """A required field when the contract has one, else a feature (the verdicts must agree either
    way: a team's own contract may let every feature be null)."""
    features = [rule for rule in verdicts.rules if rule.name in contract.feature_columns]
    return next((rule for rule in features if rule.required), features[0])


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_every_edge_value_in_every_field_gets_the_same_verdict(name: str) -> None:
    verdicts, contract = VERDICTS[name], CONTRACTS[name]
    for rule in verdicts.rules:
        for value in edge_values(rule, verdicts.rules):
            changed = a_record(contract, **{rule.name: value})
            verdicts.assert_agree([a_record(contract), changed, a_record(contract)])


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_missing_null_and_unknown_fields_get_the_same_verdict(name: str) -> None:
    verdicts, contract = VERDICTS[name], CONTRACTS[name]
    required = a_field(verdicts, contract).name
    optional = [rule.name for rule in verdicts.rules if not rule.required]
    without = a_record(contract)
    del without[required]
    for records in (
        [a_record(contract), without],
        [a_record(contract, **{required: None})],
        [a_record(contract, **dict.fromkeys(optional))],
        [a_record(contract), a_record(contract, **{optional[0]: None})],
        [a_record(contract, colour_="red")],
        [a_record(contract, **{contract.label_column: "x"})],
    ):
        verdicts.assert_agree(records)
    assert verdicts.validator.columns.records([a_record(contract)]) is not None  # the fast path


def test_numbers_beyond_the_exact_range_are_left_to_pydantic() -> None:
    verdicts, contract = VERDICTS["made_up"], CONTRACTS["made_up"]
    batch = [a_record(contract, big=2**70, amount=1e300)] * COLUMN_WISE_FROM
    assert verdicts.validator.columns.records(batch) is None  # not accepted by the fast path
    checked = verdicts.validator.check(batch, "records", 100)  # ... yet accepted, by pydantic
    assert checked == verdicts.pydantic(batch)
    assert checked[0]["big"] == 2**70


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_a_valid_batch_is_checked_column_wise_and_one_record_by_the_model(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdicts, contract = VERDICTS[name], CONTRACTS[name]
    validator = verdicts.validator
    batch = [a_record(contract) for _ in range(COLUMN_WISE_FROM)]
    split = {"columns": list(batch[0]), "data": [list(record.values()) for record in batch]}
    expected = verdicts.pydantic(batch)
    with monkeypatch.context() as patched:
        patched.setattr(validator, "_validate", lambda *_: pytest.fail("validated record-wise"))
        assert validator.check(batch, "records", 100) == expected
        assert validator.invocations_body({"dataframe_split": split}, 100) == expected
    with monkeypatch.context() as patched:
        patched.setattr(validator.columns, "records", lambda *_: pytest.fail("checked columns"))
        assert validator.check(batch[:1], "records", 100) == expected[:1]


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_a_refusal_names_the_field_as_the_record_model_does(name: str) -> None:
    verdicts, contract = VERDICTS[name], CONTRACTS[name]
    rule = a_field(verdicts, contract)
    body = [a_record(contract) for _ in range(COLUMN_WISE_FROM + 2)]
    body[3][rule.name] = [1]  # an array: no field of any kind takes one
    body[5]["colour_"] = 1
    expected = [f"records[3].{rule.name}", "records[5].colour_"]
    with pytest.raises(InputError) as refused:
        verdicts.validator.check(body, "records", 100)
    assert [error.field for error in refused.value.errors] == expected
    del body[5]["colour_"]
    split = {"columns": list(body[0]), "data": [list(record.values()) for record in body]}
    with pytest.raises(InputError) as refused:
        verdicts.validator.invocations_body({"dataframe_split": split}, 100)
    assert [error.field for error in refused.value.errors] == [f"dataframe_split[3].{rule.name}"]
