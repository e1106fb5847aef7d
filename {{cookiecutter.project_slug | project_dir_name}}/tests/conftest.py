"""Shared fixtures: every test runs against its own project folder, never the real one.

Two kinds of tests live here. Tests of the code (model, serving, monitoring) run on small
synthetic tables with the contract and parameters below, so they hold whatever data the project
adopts. Tests of the data (tests/data) run the real dbt project on the project's own raw data;
those marked `demo` check the demo's data itself and are skipped on a team's own files.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config import get_settings
from {{ cookiecutter.package_name }}.contract import ContractColumn, FeatureContract
from {{ cookiecutter.package_name }}.params import load_params

PROJECT_DIR = Path(__file__).resolve().parents[1]
SOURCE = load_params(PROJECT_DIR / "params.yaml").data.source
DEMO_ONLY = "needs the demo source (params.yaml data.source: demo): it checks the demo's data"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the tests marked `demo`, saying why, when the project's data are its own files."""
    if SOURCE == "demo":
        return
    for item in items:
        if item.get_closest_marker("demo"):
            item.add_marker(pytest.mark.skip(reason=DEMO_ONLY))


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are cached per process; each test reads them anew from its own environment."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# The parameters of the tests on synthetic tables: the defaults, a quick model, and the behaviour
# that the synthetic label follows (see the tables in tests/model and tests/monitoring).
SYNTHETIC_PARAMS = {
    "train": {
        "positive_class": "good",
        "hist_gradient_boosting": {
            "learning_rate": 0.05,
            "max_iter": 40,
            "max_leaf_nodes": 8,
            "min_samples_leaf": 60,
        },
    },
    "evaluate": {
        "permutation_repeats": 2,
        "directional": [
            {"feature": "avg_payment_delay_days", "change": 5, "expect": "not_more_likely"},
            {"feature": "return_rate", "change": 0.1, "expect": "not_more_likely"},
        ],
        "cases": [
            {
                "name": "reliable_regular",
                "expect": "good",
                "features": {"avg_payment_delay_days": 0, "return_rate": 0.0},
            },
            {
                "name": "late_payer_who_returns",
                "expect": "bad",
                "features": {"avg_payment_delay_days": 60, "return_rate": 0.6},
            },
        ],
    },
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch project folder with the synthetic tables' params.yaml, set as the project."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(SYNTHETIC_PARAMS), encoding="utf-8")
    monkeypatch.setenv("PROJECT_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# The feature contract of transform/models/marts/customer_features.yml, built in code for the model
# and monitoring tests: they train on small synthetic tables, independent of the demo data and dbt.
SYNTHETIC_COLUMNS = [
    ("customer_id", "bigint", "id"),
    ("country", "varchar", "feature"),
    ("segment", "varchar", "feature"),
    ("channel", "varchar", "feature"),
    ("age_band", "varchar", "sensitive"),
    ("tenure_days", "integer", "feature"),
    ("n_orders", "integer", "feature"),
    ("total_amount", "double", "feature"),
    ("avg_amount", "double", "feature"),
    ("max_amount", "double", "feature"),
    ("return_rate", "double", "feature"),
    ("avg_payment_delay_days", "double", "feature"),
    ("days_since_last_order", "integer", "feature"),
    ("n_categories", "integer", "feature"),
    ("label", "varchar", "label"),
]


@pytest.fixture(scope="session")
def contract() -> FeatureContract:
    """The contract of the synthetic tables (categories are free; the label is good/bad)."""
    return FeatureContract(
        model="customer_features",
        columns=tuple(
            ContractColumn(
                name=name,
                data_type=data_type,
                role=role,
                accepted_values=("good", "bad") if role == "label" else None,
            )
            for name, data_type, role in SYNTHETIC_COLUMNS
        ),
    )
