"""The numpy fast path equals the pipeline, or the pipeline serves (and says why)."""

import subprocess
import sys

import numpy as np
import pytest
from serving_support import Registry
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }}.serving.loader import frame_to_records
from {{ cookiecutter.package_name }}.serving.predictor import (
    FastPredictor,
    PipelinePredictor,
    build_predictor,
    probe_rows,
)
from {{ cookiecutter.package_name }}.training import build_pipeline


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("logistic_regression", {"max_iter": 200}),
        ("random_forest", {"n_estimators": 10, "max_depth": 4}),
        ("hist_gradient_boosting", {"max_iter": 10}),
    ],
)
def test_fast_path_equals_the_pipeline(registry: Registry, estimator: str, params: dict) -> None:
    contract, table = registry.contract, registry.table
    pipeline = build_pipeline(contract, estimator, params, seed=0)
    pipeline.fit(table[contract.feature_columns], table[contract.label_column])
    rows = [*frame_to_records(table, contract.feature_columns), *probe_rows(pipeline, contract)]
    predictor, verification = build_predictor(pipeline, contract, rows, "test rows")
    assert isinstance(predictor, FastPredictor), verification.reason
    assert verification.used_fast_path
    np.testing.assert_allclose(
        predictor.predict_proba(rows),
        PipelinePredictor(pipeline, contract).predict_proba(rows),
        rtol=0,
        atol=1e-9,
    )


def test_a_mismatch_falls_back_to_the_pipeline(registry: Registry, monkeypatch) -> None:
    contract, table = registry.contract, registry.table
    pipeline = build_pipeline(contract, "logistic_regression", {"max_iter": 200}, seed=0)
    pipeline.fit(table[contract.feature_columns], table[contract.label_column])
    monkeypatch.setattr(
        FastPredictor, "transform", lambda self, records: np.zeros((len(records), self.width))
    )
    predictor, verification = build_predictor(
        pipeline, contract, probe_rows(pipeline, contract), "probes"
    )
    assert isinstance(predictor, PipelinePredictor)
    assert "differs from the pipeline" in verification.reason


def test_an_unsupported_pipeline_is_served_as_is(registry: Registry) -> None:
    contract, table = registry.contract, registry.table
    pipeline = make_pipeline(
        FunctionTransformer(lambda frame: frame[contract.numeric_features].fillna(0)),
        DummyClassifier(),
    )
    pipeline.fit(table[contract.feature_columns], table[contract.label_column])
    predictor, verification = build_predictor(
        pipeline, contract, probe_rows(pipeline, contract), "probes"
    )
    assert isinstance(predictor, PipelinePredictor)
    assert "unsupported" in verification.reason


def test_the_service_never_imports_the_data_tools() -> None:
    code = (
        "import sys\n"
        f"from {package.__name__}.serving import app, server, loader, runtime  # noqa\n"
        f"import {package.__name__}.batch  # noqa\n"
        "loaded = {name.split('.')[0] for name in sys.modules}\n"
        "heavy = {'great_expectations', 'dbt', 'dagster', 'dvc'} & loaded\n"
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
