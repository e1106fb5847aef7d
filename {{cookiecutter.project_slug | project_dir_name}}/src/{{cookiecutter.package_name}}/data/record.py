"""The data-run record: which data, built by which dbt run, passed which gate.

Written after each successful data run (``reports/data_run/latest.json``, and one line per run in
``history.jsonl``); training attaches it to the MLflow run, so a model can be walked back to the
exact raw files (their DVC md5s), the dbt invocation and the validation verdict.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict

from ..errors import StepError
from .ingest import raw_tables

if TYPE_CHECKING:
    from ..config import Settings
    from ..validation import ValidationReport
    from .build import TransformResult

logger = logging.getLogger(__name__)


class DataRunError(StepError):
    """No data-run record yet; the message says what to run."""


class DataRunRecord(BaseModel):
    """Lineage of the feature table that training will read."""

    model_config = ConfigDict(frozen=True)

    created_at: str
    git_commit: str | None
    data_version: str
    raw_files: dict[str, str]
    dvc_lock: dict[str, str]
    dbt: dict[str, Any]
    validation: dict[str, Any]

    def tags(self) -> dict[str, str]:
        """Flat string tags for an MLflow run (``data.*``)."""
        return {
            "data.version": self.data_version,
            "data.dbt_invocation_id": str(self.dbt.get("invocation_id", "")),
            "data.dbt_target": str(self.dbt.get("target", "")),
            "data.validation": "passed" if self.validation.get("success") else "failed",
            "data.git_commit": self.git_commit or "",
        }

    def to_json(self) -> str:
        """The record as indented JSON."""
        return self.model_dump_json(indent=2) + "\n"


def data_run_dir(settings: Settings) -> Path:
    """Where the records are written."""
    return settings.reports_dir / "data_run"


def file_md5(path: Path) -> str:
    """The MD5 of a file's bytes: the hash DVC 3 records for it in ``dvc.lock``."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_version(raw_files: dict[str, str]) -> str:
    """One identifier for a set of raw files: the MD5 of their sorted names and MD5s."""
    text = "\n".join(f"{name} {md5}" for name, md5 in sorted(raw_files.items()))
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def dvc_file_md5s(folder: Path, project_dir: Path) -> dict[str, str]:
    """Path (from `project_dir`) -> MD5 of each file a ``.dvc`` file in `folder` tracks."""
    found = {}
    for dvc_file in sorted(folder.glob("*.dvc")):
        document = yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}
        for out in document.get("outs") or []:
            if "md5" in out and not str(out["md5"]).endswith(".dir"):
                path = (dvc_file.parent / str(out["path"])).relative_to(project_dir)
                found[path.as_posix()] = str(out["md5"])
    return found


def dvc_lock_md5s(lock_file: Path) -> dict[str, str]:
    """Output path -> MD5 of every stage output recorded in ``dvc.lock`` (empty if none)."""
    if not lock_file.exists():
        return {}
    lock = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
    return {
        str(out["path"]): str(out["md5"])
        for stage in (lock.get("stages") or {}).values()
        for out in stage.get("outs") or []
        if "md5" in out
    }


def build_data_run_record(
    settings: Settings, transform: TransformResult | dict[str, Any], validation: ValidationReport
) -> DataRunRecord:
    """The record of the data run that produced the current warehouse."""
    paths = sorted(table.path(settings.raw_dir) for table in raw_tables(settings.transform_dir))
    raw_files = {
        path.relative_to(settings.project_dir).as_posix()
        if path.is_relative_to(settings.project_dir)
        else str(path): file_md5(path)
        for path in paths
        if path.is_file()
    }
    dbt = transform if isinstance(transform, dict) else json.loads(transform.to_json())
    return DataRunRecord(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        git_commit=_git_commit(settings.project_dir),
        data_version=data_version(raw_files),
        raw_files=raw_files,
        dvc_lock=dvc_lock_md5s(settings.project_dir / "dvc.lock"),
        dbt=dbt,
        validation=validation.summary(),
    )


def write_data_run_record(settings: Settings, record: DataRunRecord) -> Path:
    """Write `record` as the latest, and append it to the history; returns the latest's path."""
    folder = data_run_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder / "latest.json"
    partial = latest.with_suffix(".json.partial")
    partial.write_text(record.to_json(), encoding="utf-8")
    partial.replace(latest)
    with (folder / "history.jsonl").open("a", encoding="utf-8") as history:
        history.write(record.model_dump_json() + "\n")
    logger.info("Data run recorded: version %s (%s)", record.data_version, latest)
    return latest


def record_data_run(settings: Settings, validation: ValidationReport) -> Path:
    """Record the data run of the current warehouse after its validation passed.

    The dbt side comes from the last successful transform's report; returns the record's path.
    """
    from .build import transform_report_path

    transform_report = transform_report_path(settings)
    transform = (
        json.loads(transform_report.read_text(encoding="utf-8"))
        if transform_report.exists()
        else {}
    )
    return write_data_run_record(settings, build_data_run_record(settings, transform, validation))


def load_data_run_record(settings: Settings) -> DataRunRecord:
    """The record of the last successful data run.

    Raises:
        DataRunError: when there is none yet (run ``make data validate``).
    """
    latest = data_run_dir(settings) / "latest.json"
    if not latest.exists():
        raise DataRunError(f"{latest}: no data-run record yet; run `make validate` first")
    return DataRunRecord.model_validate_json(latest.read_text(encoding="utf-8"))


def _git_commit(project_dir: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
