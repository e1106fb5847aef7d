"""Lineage: what counts as a dirty work tree, on a real git repository."""

import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.provenance import BUILT_FROM_COMMIT, git_state


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    """A repository whose project (in a subfolder, as in a monorepo) is committed."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text("print('train')\n", encoding="utf-8")
    (project / "dvc.lock").write_text("schema: '2.0'\n", encoding="utf-8")
    (tmp_path / "shared.py").write_text("VALUE = 1\n", encoding="utf-8")
    _git(tmp_path, "init", "--quiet")
    _git(tmp_path, "add", "--all")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "c")
    return project


def test_a_committed_tree_is_clean(committed: Path) -> None:
    commit, dirty = git_state(committed)
    assert len(commit) == 40
    assert not dirty


def test_the_lock_that_dvc_repro_rewrites_does_not_make_it_dirty(committed: Path) -> None:
    (committed / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n", encoding="utf-8")
    assert not git_state(committed)[1]


@pytest.mark.parametrize("path", ["train.py", "new.py", "../shared.py"])
def test_any_other_change_in_the_repository_does(committed: Path, path: str) -> None:
    (committed / path).write_text("changed = True\n", encoding="utf-8")
    assert git_state(committed)[1]


def test_outside_a_repository_nothing_can_be_reproduced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BUILT_FROM_COMMIT, raising=False)
    assert git_state(tmp_path) == ("none", True)
    monkeypatch.setenv(BUILT_FROM_COMMIT, "not-a-commit")
    assert git_state(tmp_path) == ("none", True)


def test_an_image_reports_the_commit_it_was_built_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container holds no .git: the Dockerfile's GIT_COMMIT argument stands for it."""
    monkeypatch.setenv(BUILT_FROM_COMMIT, "0123456789ABCDEF0123456789abcdef01234567")
    assert git_state(tmp_path) == ("0123456789abcdef0123456789abcdef01234567", False)


def test_in_a_repository_its_own_state_wins(
    committed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUILT_FROM_COMMIT, "0" * 40)
    (committed / "train.py").write_text("changed = True\n", encoding="utf-8")
    commit, dirty = git_state(committed)
    assert commit != "0" * 40
    assert dirty
