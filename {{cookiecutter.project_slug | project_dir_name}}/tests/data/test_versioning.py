"""DVC: `dvc repro` runs the data steps once, and pushed data comes back byte for byte.

With the demo source DVC tracks the generator's output; with your own files, the files that
`dvc add` tracks. Either way, what `make data-push` sends is what a fresh clone pulls.
"""

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from scratch import SOURCE, run_in, scratch_project

from {{ cookiecutter.package_name }}.data.ingest import raw_tables
from {{ cookiecutter.package_name }}.data.record import file_md5

pytestmark = pytest.mark.slow

PROJECT_DIR = Path(__file__).resolve().parents[2]
RAW = [f"data/raw/{table.path(Path()).name}" for table in raw_tables(PROJECT_DIR / "transform")]


@pytest.fixture(scope="module")
def repro_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC project whose data stages ran once: raw data versioned, warehouse built."""
    folder = tmp_path_factory.mktemp("versioned") / "project"
    project = scratch_project(folder, with_code=True, versioned=True)
    if SOURCE != "demo":
        run_in(project, sys.executable, "-m", "dvc", "add", *RAW)
    # The data stages only (later stages train models: not this test's business).
    run_in(project, sys.executable, "-m", "dvc", "repro", "validate")
    return project


def _versioned_project(folder: Path, repro_once: Path, run) -> Path:
    """A private copy of `repro_once`, set up as `make setup` does (its own remote beside it)."""
    shutil.copytree(repro_once, folder, symlinks=True)
    run(folder, sys.executable, "-m", "{{ cookiecutter.package_name }}", "dvc-setup")
    return folder


def test_repro_push_and_pull_restore_identical_data(tmp_path: Path, repro_once: Path, run) -> None:
    project = _versioned_project(tmp_path / "project", repro_once, run)
    assert "analytics = false" in (project / ".dvc" / "config").read_text(encoding="utf-8")
    assert str(tmp_path / "remote") in (project / ".dvc" / "config.local").read_text(
        encoding="utf-8"
    )
    assert (project / "data" / "warehouse.duckdb").exists()
    assert (project / "reports" / "data_run" / "latest.json").exists()
    again = run(project, sys.executable, "-m", "dvc", "repro", "validate")
    assert "Data and pipelines are up to date" in again
    before = {name: file_md5(project / name) for name in RAW}

    pushed = run(project, sys.executable, "-m", "dvc", "push")
    assert "pushed" in pushed
    shutil.rmtree(project / ".dvc" / "cache")
    for name in RAW:
        (project / name).unlink()
    # What `make data-pull` runs: the stages this test did not run have nothing to pull.
    run(project, sys.executable, "-m", "dvc", "pull", "--allow-missing")

    assert {name: file_md5(project / name) for name in RAW} == before
    dvc_files = [path for path in project.rglob("*.dvc") if path.is_file()]
    recorded = "".join(path.read_text(encoding="utf-8") for path in dvc_files)
    recorded += (project / "dvc.lock").read_text(encoding="utf-8")
    assert all(md5 in recorded for md5 in before.values())


def _drop_last_row(path: Path) -> bytes:
    """Edit a raw file as a person might (its last row deleted); return its new bytes."""
    if path.suffix == ".parquet":
        pd.read_parquet(path).iloc[:-1].to_parquet(path, index=False)
    else:
        path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    return path.read_bytes()


def test_a_hand_edited_raw_file_is_refused_never_replaced(
    tmp_path: Path, repro_once: Path, run
) -> None:
    project = _versioned_project(tmp_path / "project", repro_once, run)
    name = RAW[-1]
    path = project / name
    original = path.read_bytes()
    edited = _drop_last_row(path)
    check = (sys.executable, "-m", "{{ cookiecutter.package_name }}", "pre-repro")

    refused = run(project, *check, code=1)
    keep = "dvc commit --force" if SOURCE == "demo" else "dvc add"
    assert f"{name}: " in refused
    assert f"`uv run {keep} {name}`" in refused
    assert f"`uv run dvc checkout --force {name}`" in refused
    assert path.read_bytes() == edited  # refused, not replaced

    # Either way forward works: drop the edit, or keep it as the new version.
    run(project, sys.executable, "-m", "dvc", "checkout", "--force", name)
    assert path.read_bytes() == original
    edited = _drop_last_row(path)
    run(project, sys.executable, "-m", "dvc", *keep.split()[1:], name)
    run(project, *check)
    run(project, sys.executable, "-m", "dvc", "repro", "validate")
    assert path.read_bytes() == edited
