"""The demo's own drift, end to end: generator -> dbt features -> model -> drift verdict."""

from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import get_settings
from {{ cookiecutter.package_name }}.contract import load_contract
from {{ cookiecutter.package_name }}.data.generate import (
    SourceTables,
    generate_tables,
    write_tables,
)
from {{ cookiecutter.package_name }}.monitoring.drift import detect_drift
from {{ cookiecutter.package_name }}.monitoring.feedback import (
    ID_BLOCK,
    build_features,
    emit_batch,
    featurise,
    production_tables,
)
from {{ cookiecutter.package_name }}.monitoring.reference import build_reference_profile
from {{ cookiecutter.package_name }}.params import load_params
from {{ cookiecutter.package_name }}.pipeline import build_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.demo]

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_the_generators_sudden_drift_is_found_and_its_quiet_batch_is_not(
    project, monkeypatch
) -> None:
    # The real dbt project builds the features; everything it writes stays in `project`.
    monkeypatch.setenv("TRANSFORM_DIR", str(PROJECT_DIR / "transform"))
    settings = get_settings()
    shipped = load_params(settings.params_file)
    params = shipped.model_copy(
        update={"data": shipped.data.model_copy(update={"n_customers": 3000, "n_sales": 30000})}
    )
    reference = generate_tables(params.data.seed, 3000, 30000, params.data.extract_date)
    batches = {
        "sudden": production_tables(params, "sudden", step=1, run=1, number=1),
        "none": production_tables(params, "none", step=1, run=1, number=2),
    }
    # One dbt build for the reference extract and both batches (their ids never collide).
    everything = [reference, *batches.values()]
    write_tables(
        SourceTables(
            customers=pd.concat([tables.customers for tables in everything]),
            sales=pd.concat([tables.sales for tables in everything]),
        ),
        project / "build" / "raw",
    )
    table = build_features(settings, params, project / "build")
    contract = load_contract(settings)
    block = table[contract.id_column] // ID_BLOCK
    train, held_out = table[block == 0].iloc[::2], table[block == 0].iloc[1::2]
    model = build_pipeline(contract, "logistic_regression", {"C": 1.0, "max_iter": 1000}, 0)
    model.fit(train[contract.feature_columns], train[contract.label_column])
    profile = build_reference_profile(held_out, model, contract, "good", model_version="1")

    def drift_of(number: int):
        rows = table[block == number]
        features = rows[contract.feature_columns]
        window = features.assign(
            prediction=model.predict(features).astype(str),
            score=model.predict_proba(features)[:, list(model.classes_).index("good")],
        )
        return detect_drift(profile, window, params.monitor)

    sudden, quiet = drift_of(1), drift_of(2)
    assert sudden.drift_detected
    assert sudden.dataset_drift
    assert "avg_payment_delay_days" in sudden.drifted_features
    assert not quiet.drift_detected, quiet.to_dict()


@pytest.mark.usefixtures("project")
def test_batches_built_together_get_the_features_each_would_get_alone(monkeypatch) -> None:
    """`make drift-demo` builds its batches' features in one dbt run: nothing leaks between them."""
    monkeypatch.setenv("TRANSFORM_DIR", str(PROJECT_DIR / "transform"))
    settings = get_settings()
    shipped = load_params(settings.params_file)
    demo = shipped.monitor.demo.model_copy(update={"customers_per_batch": 100})
    params = shipped.model_copy(
        update={"monitor": shipped.monitor.model_copy(update={"demo": demo})}
    )
    batches = [emit_batch(settings, params, "gradual", step, run=1) for step in (1, 2)]
    together = featurise(settings, params, batches)
    alone = build_features(settings, params, batches[1].folder(settings))
    id_column = load_contract(settings).id_column

    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values(id_column).reset_index(drop=True)

    assert len(together) == 2
    assert (together[0][id_column] // ID_BLOCK == batches[0].number).all()
    assert len(together[0]) > 0
    pd.testing.assert_frame_equal(ordered(together[1]), ordered(alone))
