"""Shared fixtures: every test runs against its own project folder, never the real one."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import get_settings
from {{ cookiecutter.package_name }}.contract import ContractColumn, FeatureContract

PROJECT_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are cached per process; each test reads them anew from its own environment."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch project folder with the real params.yaml, set as the project folder."""
    (tmp_path / "params.yaml").write_text(
        (PROJECT_DIR / "params.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
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
