import hashlib
import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.data.record import (
    DataRunError,
    build_data_run_record,
    data_version,
    dvc_lock_md5s,
    file_md5,
    load_data_run_record,
    write_data_run_record,
)
from {{ cookiecutter.package_name }}.validation import ValidationReport

TRANSFORM = {"invocation_id": "abc-123", "target": "duckdb", "tests": {"pass": 3}}


def _report(success: bool = True) -> ValidationReport:
    return ValidationReport(
        success=success, suite="s", rows=10, evaluated=4, validated_at="now", outcomes=[]
    )


def test_file_md5_is_the_plain_md5_dvc_records(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,2\n")
    assert file_md5(path) == hashlib.md5(b"a,b\n1,2\n", usedforsecurity=False).hexdigest()


def test_the_data_version_changes_with_any_file() -> None:
    assert data_version({"a": "1", "b": "2"}) == data_version({"b": "2", "a": "1"})
    assert data_version({"a": "1", "b": "2"}) != data_version({"a": "1", "b": "3"})


def test_dvc_lock_md5s_reads_every_stage_output(tmp_path: Path) -> None:
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        "schema: '2.0'\nstages:\n  data:\n    cmd: x\n    outs:\n"
        "    - path: data/raw/customers.csv\n      md5: aaa\n      size: 1\n",
        encoding="utf-8",
    )
    assert dvc_lock_md5s(lock) == {"data/raw/customers.csv": "aaa"}
    assert dvc_lock_md5s(tmp_path / "missing.lock") == {}


def test_a_record_is_written_loaded_and_kept_in_history(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path)
    with pytest.raises(DataRunError, match="no data-run record yet"):
        load_data_run_record(settings)
    models = settings.transform_dir / "models"
    models.mkdir(parents=True)
    (models / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: customers\n"
        "        meta: {file: customers.parquet}\n"
        "        columns: [{name: customer_id, data_type: bigint}]\n",
        encoding="utf-8",
    )
    settings.raw_dir.mkdir(parents=True)
    (settings.raw_dir / "customers.parquet").write_bytes(b"PAR1")
    (settings.raw_dir / "notes.csv").write_text("not,declared\n", encoding="utf-8")
    record = build_data_run_record(settings, TRANSFORM, _report())
    write_data_run_record(settings, record)
    write_data_run_record(settings, record)
    loaded = load_data_run_record(settings)
    assert loaded == record
    # The declared tables' files are the data; anything else in data/raw is not.
    assert list(loaded.raw_files) == ["data/raw/customers.parquet"]
    assert loaded.tags()["data.dbt_invocation_id"] == "abc-123"
    assert loaded.tags()["data.validation"] == "passed"
    history = (tmp_path / "reports" / "data_run" / "history.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line)["data_version"] for line in history.splitlines()] == [
        record.data_version
    ] * 2
