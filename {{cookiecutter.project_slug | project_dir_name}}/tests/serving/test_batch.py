"""Batch scoring: the predictions table per run date, idempotent, all or nothing."""

from datetime import date

import duckdb
import pytest
from serving_support import Registry, settings_for, write_warehouse

from {{ cookiecutter.package_name }} import batch
from {{ cookiecutter.package_name }}.batch import PREDICTIONS_TABLE, ScoringError, run_scoring
from {{ cookiecutter.package_name }}.prediction_log import read_prediction_log


def rows_by_date(settings) -> dict[str, int]:
    with duckdb.connect(str(settings.predictions_path), read_only=True) as connection:
        found = connection.execute(
            f"select run_date, count(*) from {PREDICTIONS_TABLE} group by 1 order by 1"  # noqa: S608
        ).fetchall()
    return {day.isoformat(): count for day, count in found}


@pytest.fixture
def settings(registry: Registry, tmp_path):
    return settings_for(registry.folder, prediction_log_dir=tmp_path / "log")


def test_score_writes_one_row_per_unlabelled_row(settings, registry: Registry) -> None:
    result = run_scoring(settings, date(2025, 7, 1), chunk_rows=128)
    assert result.rows == len(registry.unlabelled)
    assert result.model_version == registry.champion
    with duckdb.connect(str(settings.predictions_path), read_only=True) as connection:
        frame = connection.execute(
            f"select * from {PREDICTIONS_TABLE} where run_date = '2025-07-01'"  # noqa: S608
        ).df()
    contract = registry.contract
    assert list(frame.columns) == [
        contract.id_column,
        contract.label_column,
        "score",
        "model_version",
        "scored_at",
        "run_date",
    ]
    # The rows whose outcome is not known yet; never the labelled rows the model learnt from.
    assert sorted(frame[contract.id_column]) == sorted(registry.unlabelled[contract.id_column])
    assert set(frame[contract.label_column]) <= set(contract.label_values)
    assert frame["score"].between(0, 1).all()
    log = read_prediction_log(settings.prediction_log_dir)
    assert len(log) == len(registry.unlabelled)
    assert set(log["source"]) == {"batch"}
    assert set(log["request_id"]) == {"batch-2025-07-01"}


def test_a_rerun_replaces_its_date_only(settings, registry: Registry) -> None:
    run_scoring(settings, date(2025, 7, 2))
    run_scoring(settings, date(2025, 7, 3))
    run_scoring(settings, date(2025, 7, 2))
    counts = rows_by_date(settings)
    assert counts["2025-07-02"] == len(registry.unlabelled)
    assert counts["2025-07-03"] == len(registry.unlabelled)
    log = read_prediction_log(settings.prediction_log_dir)
    assert (log["request_id"] == "batch-2025-07-02").sum() == len(registry.unlabelled)


def test_a_failed_write_changes_nothing(settings, monkeypatch) -> None:
    run_scoring(settings, date(2025, 7, 4))
    before = rows_by_date(settings)

    real = batch.predictions_frame

    def broken(*args, **kwargs):
        frame = real(*args, **kwargs)
        frame.loc[frame.index[-1], "score"] = None  # violates NOT NULL on the last row
        return frame

    monkeypatch.setattr(batch, "predictions_frame", broken)
    with pytest.raises(ScoringError, match="nothing changed"):
        run_scoring(settings, date(2025, 7, 4))
    with pytest.raises(ScoringError, match="nothing changed"):
        run_scoring(settings, date(2025, 7, 5))
    assert rows_by_date(settings) == before


def test_nothing_new_to_score_writes_nothing(registry: Registry, tmp_path) -> None:
    settings = settings_for(registry.copy_to(tmp_path), prediction_log_dir=tmp_path / "log")
    write_warehouse(settings, registry.contract, registry.table)
    result = run_scoring(settings, date(2025, 7, 7))
    assert result.rows == 0
    assert not settings.predictions_path.exists()
    assert not settings.prediction_log_dir.exists()


def test_no_champion_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ScoringError, match="not found"):
        run_scoring(settings_for(tmp_path), date(2025, 7, 6))
