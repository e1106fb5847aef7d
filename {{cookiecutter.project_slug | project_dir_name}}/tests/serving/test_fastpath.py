"""The numpy fast path equals the pipeline, or the pipeline serves (and says why)."""

import subprocess
import sys

import numpy as np
import pytest
from serving_support import Registry
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }}.serving.loader import frame_to_records
from {{ cookiecutter.package_name }}.serving.predictor import (
    FastPredictor,
    PipelinePredictor,
    TreeWalker,
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


@pytest.mark.parametrize("n_classes", [2, 3])
def test_walking_the_trees_equals_predict_proba(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    features = rng.normal(size=(600, 4))
    features[rng.random(features.shape) < 0.1] = np.nan  # missing values take their own branch
    labels = (np.nan_to_num(features[:, 0]) * 2 + rng.normal(size=600) > 0).astype(int)
    if n_classes == 3:
        labels += (np.nan_to_num(features[:, 1]) > 1).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(features, labels)
    walker = TreeWalker.of(model)
    assert walker is not None
    for rows in (features[:1], features[:7], features[::3]):
        np.testing.assert_allclose(
            walker.predict_proba(rows), model.predict_proba(rows), rtol=0, atol=1e-12
        )


def test_only_plain_gradient_boosting_trees_are_walked() -> None:
    features = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]] * 10)
    labels = np.array([0, 1, 0, 1] * 10)
    assert TreeWalker.of(RandomForestClassifier(n_estimators=2).fit(features, labels)) is None
    categorical = HistGradientBoostingClassifier(max_iter=3, categorical_features=[1])
    assert TreeWalker.of(categorical.fit(features, labels)) is None


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
