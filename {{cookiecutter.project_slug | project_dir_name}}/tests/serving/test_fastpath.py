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
from {{ cookiecutter.package_name }}.pipeline import build_pipeline
from {{ cookiecutter.package_name }}.serving.loader import frame_to_records
from {{ cookiecutter.package_name }}.serving.predictor import (
    FastPredictor,
    PipelinePredictor,
    TreeWalker,
    build_predictor,
    probe_rows,
)


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


def test_every_path_that_serves_is_verified_on_a_default_size_model(
    registry: Registry, monkeypatch
) -> None:
    """100 trees: the walker serves batches of at most 200 rows, the estimator larger ones."""
    contract, table = registry.contract, registry.table
    pipeline = build_pipeline(contract, "hist_gradient_boosting", {"max_iter": 100}, seed=0)
    pipeline.fit(table[contract.feature_columns], table[contract.label_column])
    rows = [*frame_to_records(table, contract.feature_columns), *probe_rows(pipeline, contract)]
    predictor, verification = build_predictor(pipeline, contract, rows, "test rows")
    assert isinstance(predictor, FastPredictor), verification.reason
    assert predictor.walker is not None
    assert len(rows) > predictor.walker.max_rows == 200
    assert len(verification.paths) == 2, verification.paths
    assert any(path.startswith("tree walker") for path in verification.paths)

    # A walker that goes wrong is caught, although the rows are more than it walks at once.
    walk = TreeWalker.raw_predict
    monkeypatch.setattr(TreeWalker, "raw_predict", lambda self, matrix: walk(self, matrix) + 0.5)
    predictor, verification = build_predictor(pipeline, contract, rows, "test rows")
    assert isinstance(predictor, PipelinePredictor)
    assert "tree walker" in verification.reason
    assert not verification.used_fast_path


class RenamedInternals(HistGradientBoostingClassifier):
    """As if a scikit-learn release renamed a private attribute that the tree walker reads."""

    def fit(self, X, y, sample_weight=None):  # noqa: N803 (scikit-learn's signature)
        super().fit(X, y, sample_weight)
        self._baseline_renamed = self.__dict__.pop("_baseline_prediction")
        return self

    def _raw_predict(self, X, n_threads=None):  # noqa: N803
        # scikit-learn's own code reads the attribute under its new name.
        self._baseline_prediction = self._baseline_renamed
        try:
            return super()._raw_predict(X, n_threads)
        finally:
            del self._baseline_prediction


def test_a_model_missing_a_private_attribute_is_served_by_the_pipeline(
    registry: Registry,
) -> None:
    contract, table = registry.contract, registry.table
    pipeline = build_pipeline(contract, "hist_gradient_boosting", {"max_iter": 10}, seed=0)
    pipeline.steps[-1] = ("model", RenamedInternals(max_iter=10, random_state=0))
    pipeline.fit(table[contract.feature_columns], table[contract.label_column])
    rows = probe_rows(pipeline, contract)
    predictor, verification = build_predictor(pipeline, contract, rows, "probes")
    assert isinstance(predictor, PipelinePredictor)
    assert "AttributeError" in verification.reason
    assert "_baseline_prediction" in verification.reason
    assert predictor.predict_proba(rows[:3]).shape == (3, 2)


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
        f"from {package.__name__}.serving import app, server, loader, state  # noqa\n"
        f"import {package.__name__}.batch  # noqa\n"
        "loaded = {name.split('.')[0] for name in sys.modules}\n"
        "heavy = {'great_expectations', 'dbt', 'dvc'} & loaded\n"
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
