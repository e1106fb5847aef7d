"""Data versioning with DVC: its config, its default remote, and what runs before ``dvc repro``.

Before every ``dvc repro`` (:func:`prepare_repro`; Make runs ``python -m <package> pre-repro``):

* A guard (:func:`refuse_edited_outputs`). DVC restores a stage's output that was edited by
  hand, so an edited demo table would be silently replaced; a file of your own changed since
  ``dvc add`` would be built as unversioned data that no clone can pull. The guard names the file
  and the two ways forward instead.
* The warehouse's identity (:func:`~.build.pin_warehouse`). Which warehouse dbt builds into is a
  setting (``DBT_TARGET`` and its location), which DVC cannot see; written over the file the
  ``transform`` stage outputs, it makes a switch (DuckDB to PostgreSQL, another schema) rebuild
  the data and what follows, and nothing else does.

The remote is a per-machine setting (``DATA_REMOTE``; by default a folder outside the git tree,
``~/.cache/dvc-remotes/<project folder>``), so it is written to ``.dvc/config.local``, which git
ignores; the committed ``.dvc/config`` keeps only what every clone shares (analytics off). A team
that shares an S3/GCS/Azure remote sets ``DATA_REMOTE`` for everyone (e.g. in CI) instead.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import TYPE_CHECKING

from ..errors import StepError

if TYPE_CHECKING:
    from pathlib import Path

    from ..config import Settings
    from ..params import Params

logger = logging.getLogger(__name__)

REMOTE_NAME = "storage"


class DataVersioningError(StepError):
    """A DVC command failed, or would overwrite a file edited by hand; the message says why."""


def refuse_edited_outputs(settings: Settings) -> None:
    """Refuse to go on when a raw file differs from what DVC recorded for it.

    Raises:
        DataVersioningError: naming each edited file and the two ways forward.
    """
    from .record import dvc_file_md5s, dvc_lock_md5s, file_md5

    project = settings.project_dir
    if not settings.raw_dir.is_relative_to(project):
        return  # DATA_DIR outside the project: not a folder DVC tracks here
    raw = settings.raw_dir.relative_to(project).as_posix()
    outputs = {
        path: md5
        for path, md5 in dvc_lock_md5s(project / "dvc.lock").items()
        if path.startswith(f"{raw}/")
    }
    added = dvc_file_md5s(settings.raw_dir, project)
    problems = []
    for path, md5 in (outputs | added).items():
        if not (project / path).is_file() or file_md5(project / path) == md5:
            continue
        if path in outputs:
            problems.append(
                f"{path}: edited since DVC recorded it; the next `dvc repro` would put the "
                f"recorded version back. Keep your edit: `uv run dvc commit --force {path}`"
            )
        else:
            problems.append(
                f"{path}: changed since `dvc add` recorded it; built as it is, it would be data "
                f"that no clone can pull. Keep the change: `uv run dvc add {path}` (and commit "
                f"{path}.dvc)"
            )
        problems[-1] += f". Or drop it: `uv run dvc checkout --force {path}`."
    if problems:
        raise DataVersioningError("\n".join(problems))


def prepare_repro(settings: Settings) -> None:
    """What runs before every ``dvc repro``: refuse hand-edited raw data, pin the warehouse.

    Raises:
        DataVersioningError: on a hand-edited raw file.
    """
    from .build import pin_warehouse

    refuse_edited_outputs(settings)
    pin_warehouse(settings)


def refresh_raw_data(settings: Settings, params: Params) -> dict[str, Path]:
    """Bring the raw tables up to date as ``make data`` does before dbt, and say where they are.

    Hand edits are refused first (:func:`prepare_repro`); with the demo source, DVC
    regenerates the tables when their parameters or generator changed (``dvc repro data``, a
    no-op otherwise); a team's own files are used as DVC last recorded them.

    Raises:
        DataVersioningError: on a hand-edited file, a failed DVC run, or a missing raw file.
    """
    from ..params import DemoSource
    from .ingest import raw_tables

    prepare_repro(settings)
    if isinstance(params.data, DemoSource):
        run_dvc(settings, "repro", "--single-item", "data")
    tables = raw_tables(settings.transform_dir)
    paths = {table.name: table.path(settings.raw_dir) for table in tables}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise DataVersioningError(
            f"raw file(s) not here: {', '.join(missing)}; `make data-pull` fetches them from the "
            "DVC remote"
        )
    return paths


def record_stage(settings: Settings, stage: str) -> None:
    """Record in ``dvc.lock`` that `stage`'s outputs come from its current inputs (``dvc commit``).

    For a runner other than DVC (the Dagster assets) that ran the stage's step itself. Without
    it, ``dvc.lock`` would still describe the outputs of the last ``dvc repro``: ``make all``
    would redo the stage, and ``make data-pull`` would refuse to overwrite the "unsaved" outputs.
    A project without DVC, or without that stage, is left alone.

    Raises:
        DataVersioningError: when ``dvc commit`` fails (its output is in the message).
    """
    import yaml

    pipeline = settings.project_dir / "dvc.yaml"
    if not (settings.project_dir / ".dvc").is_dir() or not pipeline.is_file():
        return
    stages = (yaml.safe_load(pipeline.read_text(encoding="utf-8")) or {}).get("stages") or {}
    if stage in stages:
        run_dvc(settings, "commit", "--force", "--quiet", stage)


def setup_dvc(settings: Settings) -> str:
    """Run ``dvc init`` where missing, turn analytics off and set the default remote.

    Returns:
        The remote's URL.

    Raises:
        DataVersioningError: when a DVC command fails (its output is in the message).
    """
    project = settings.project_dir
    if not (project / ".dvc").is_dir():
        in_git = (project / ".git").exists()
        run_dvc(settings, "init", "--quiet", *([] if in_git else ["--no-scm"]))
    run_dvc(settings, "config", "core.analytics", "false")
    remote = settings.dvc_remote
    run_dvc(settings, "remote", "add", "--local", "--default", "--force", REMOTE_NAME, remote)
    logger.info("DVC remote %r -> %s", REMOTE_NAME, remote)
    return remote


def run_dvc(settings: Settings, *args: str) -> None:
    """Run ``dvc <args>`` in the project with this interpreter's DVC.

    Raises:
        DataVersioningError: when it fails (its output is in the message).
    """
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=settings.project_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DataVersioningError(f"dvc {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
