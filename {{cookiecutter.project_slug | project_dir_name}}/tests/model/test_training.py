import re
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import ConfigError, Settings
from {{ cookiecutter.package_name }}.params import Params, load_params
from {{ cookiecutter.package_name }}.pipeline import build_pipeline, model_input, monotonic_constraints
from {{ cookiecutter.package_name }}.training import (
    TrainingRefusedError,
    check_params_against_contract,
    fit_model,
    grid_search,
    split_table,
    training_metrics,
)


def test_the_pipeline_reads_exactly_the_contract_features(contract, table) -> None:
    pipeline = build_pipeline(contract, "logistic_regression", {}, seed=0)
    pipeline.fit(model_input(table, contract), table["label"])
    assert list(pipeline.feature_names_in_) == contract.feature_columns
    assert "customer_id" not in pipeline.feature_names_in_
    assert "age_band" not in pipeline.feature_names_in_
    encoder = pipeline.named_steps["preprocess"].named_transformers_["categorical"]
    assert encoder.named_steps["encode"].handle_unknown == "ignore"


def test_unseen_categories_are_ignored(contract, table) -> None:
    pipeline = build_pipeline(contract, "hist_gradient_boosting", {"max_iter": 10}, seed=0)
    pipeline.fit(model_input(table, contract), table["label"])
    row = model_input(table.head(1), contract).copy()
    row["country"] = "XX"
    assert pipeline.predict(row)[0] in {"good", "bad"}


def test_the_split_is_stratified_and_seeded(contract, table, params: Params) -> None:
    first = split_table(table, contract, params.train)
    second = split_table(table.sample(frac=1, random_state=3), contract, params.train)
    assert first.test["customer_id"].tolist() == second.test["customer_id"].tolist()
    assert abs(first.test["label"].eq("bad").mean() - table["label"].eq("bad").mean()) < 0.02


@pytest.mark.parametrize(
    "estimator", ["logistic_regression", "random_forest", "hist_gradient_boosting"]
)
def test_training_is_deterministic(contract, table, params: Params, estimator: str) -> None:
    train_params = params.train.model_copy(
        update={
            "estimator": estimator,
            "random_forest": params.train.random_forest.model_copy(update={"n_estimators": 20}),
        }
    )
    split = split_table(table, contract, train_params)
    runs = [fit_model(split, contract, train_params).pipeline for _ in range(2)]
    metrics = [training_metrics(model, split.test, contract, "good") for model in runs]
    assert metrics[0] == metrics[1]
    probabilities = [model.predict_proba(model_input(split.test, contract)) for model in runs]
    assert (probabilities[0] == probabilities[1]).all()


def test_grid_search_ranks_candidates(contract, table, params: Params) -> None:
    train_params = params.train.model_copy(
        update={
            "estimator": "logistic_regression",
            "search": params.train.search.model_copy(
                update={"enabled": True, "grid": {"logistic_regression": {"C": [0.01, 1.0]}}}
            ),
        }
    )
    results = grid_search(split_table(table, contract, train_params), contract, train_params)
    assert len(results) == 2
    assert results[0]["cv_precision"] >= results[1]["cv_precision"]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("train:\n  estimator: xgboost\n", "train.estimator: Input should be"),
        (
            "train:\n  random_forest:\n    n_estimators: 0\n",
            "train.random_forest.n_estimators: Input should be greater than or equal to 1",
        ),
        (
            "train:\n  hist_gradient_boosting:\n    learning_rat: 0.1\n",
            "train.hist_gradient_boosting.learning_rat: Extra inputs are not permitted",
        ),
        (
            "train:\n  search:\n    grid:\n      random_forest:\n        max_depth: [4, -1]\n",
            "search.grid.random_forest.max_depth: -1",
        ),
        ("gate:\n  min_precision: 1.5\n", "gate.min_precision: Input should be less than"),
        ("train:\n  test_size: 0.95\n", "train.test_size"),
    ],
)
def test_bad_training_params_name_the_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_params(path)


def test_params_that_name_columns_are_checked_against_the_contract(contract, params) -> None:
    bad = params.model_copy(
        update={
            "train": params.train.model_copy(update={"positive_class": "great"}),
            "evaluate": params.evaluate.model_copy(
                update={
                    "directional": (
                        params.evaluate.directional[0].model_copy(update={"feature": "age_band"}),
                    )
                }
            ),
        }
    )
    with pytest.raises(TrainingRefusedError) as refused:
        check_params_against_contract(bad, contract)
    assert "train.positive_class" in str(refused.value)
    assert "evaluate.directional.0.feature" in str(refused.value)
    check_params_against_contract(params, contract)


def test_mlflow_settings_default_to_the_project(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, mlflow_tracking_uri="")
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert settings.mlflow_artifact_root == (tmp_path.resolve() / "mlartifacts").as_uri()
    assert settings.model_name == Settings.__module__.split(".")[0]  # the package name
    assert settings.experiment_name == settings.model_name
    remote = Settings(project_dir=tmp_path, mlflow_artifact_root="s3://bucket/mlflow")
    assert remote.mlflow_artifact_root == "s3://bucket/mlflow"
    # With a tracking server, the server's artifact store, never a folder on this machine.
    server = Settings(project_dir=tmp_path, mlflow_tracking_uri="http://mlflow:5000")
    assert server.mlflow_artifact_root == ""
    chosen = Settings(
        project_dir=tmp_path, mlflow_tracking_uri="http://mlflow:5000", mlflow_artifact_root="a"
    )
    assert chosen.mlflow_artifact_root == (tmp_path.resolve() / "a").as_uri()


def test_directional_expectations_become_monotonic_constraints(params: Params) -> None:
    directional = [
        {"feature": "return_rate", "change": 0.1, "expect": "not_more_likely"},
        {"feature": "tenure_days", "change": -30, "expect": "not_more_likely"},
        {"feature": "n_orders", "change": 1, "expect": "not_less_likely"},
        {"feature": "max_amount", "change": 1, "expect": "not_less_likely"},
        {"feature": "max_amount", "change": 1, "expect": "not_more_likely"},
    ]
    evaluate = type(params.evaluate).model_validate({"directional": directional})
    # scikit-learn constrains classes_[1] ("good" of the sorted ["bad", "good"]).
    assert monotonic_constraints(evaluate, ["good", "bad"], "good") == {
        "return_rate": -1,
        "tenure_days": 1,
        "n_orders": 1,
    }  # max_amount contradicts itself: left free
    assert monotonic_constraints(evaluate, ["good", "bad"], "bad") == {
        "return_rate": 1,
        "tenure_days": -1,
        "n_orders": -1,
    }
    assert monotonic_constraints(evaluate, ["a", "b", "c"], "a") == {}


@pytest.mark.parametrize("estimator", ["random_forest", "hist_gradient_boosting"])
def test_tree_ensembles_respect_the_directional_expectations(
    contract, table, params: Params, estimator: str
) -> None:
    train_params = params.train.model_copy(update={"estimator": estimator})
    split = split_table(table, contract, train_params)
    constraints = monotonic_constraints(params.evaluate, ["bad", "good"], "good")
    model = fit_model(split, contract, train_params, constraints).pipeline
    names = list(model["preprocess"].get_feature_names_out())
    assert len(model["model"].monotonic_cst) == len(names)
    for feature, sign in constraints.items():
        assert model["model"].monotonic_cst[names.index(feature)] == sign
    features = model_input(split.test, contract)
    for expectation in params.evaluate.directional:
        changed = features.copy()
        changed[expectation.feature] += expectation.change
        moved = model.predict_proba(changed)[:, 1] - model.predict_proba(features)[:, 1]
        assert (moved <= 1e-12).all()  # "good" never more likely: not one row
