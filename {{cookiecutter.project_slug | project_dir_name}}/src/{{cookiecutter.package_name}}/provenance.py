"""Lineage facts about a run: which code, which data, which parameters and which environment.

Every model run is tagged with these, and every model version copies them, so that from any
prediction one can walk back to the commit, the data version, the dbt invocation and the
validation result that produced the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import StepError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .params import Params

logger = logging.getLogger(__name__)

# Tag names, shared by runs and model versions (MLflow tags are strings).
TAG_GIT_COMMIT = "lineage.git_commit"
TAG_GIT_DIRTY = "lineage.git_dirty"
TAG_DATA_VERSION = "lineage.data_version"
TAG_DBT_INVOCATION = "lineage.dbt_invocation_id"
TAG_VALIDATION = "lineage.validation"
TAG_PARAMS_HASH = "lineage.params_hash"
TAG_LOCK_HASH = "lineage.lock_hash"
TAG_PYTHON = "lineage.python_version"
LINEAGE_TAGS = (
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_DATA_VERSION,
    TAG_DBT_INVOCATION,
    TAG_VALIDATION,
    TAG_PARAMS_HASH,
    TAG_LOCK_HASH,
    TAG_PYTHON,
)
UNKNOWN = "unknown"
# Files the pipeline itself rewrites while it runs: `dvc repro` updates the lock of each stage
# before the next one starts, so training would otherwise always find the tree dirty. What they
# record (the data's hashes) is in the run's data tags.
WRITTEN_BY_THE_PIPELINE = ("dvc.lock",)
# Outside a git work tree (a container image holds no .git), the commit the image was built from,
# given at build time (the Dockerfile's GIT_COMMIT argument). An image is built from a checkout's
# committed files, so a run from it is as reproducible as that commit.
BUILT_FROM_COMMIT = "GIT_COMMIT"
_COMMIT_PATTERN = re.compile(r"^[0-9a-f]{40}$")


class DirtyTreeError(StepError):
    """Uncommitted changes where a run must be reproducible from a commit."""


def git_state(project_dir: Path) -> tuple[str, bool]:
    """The commit checked out in `project_dir` and whether the work tree has changes.

    Changes to the files the pipeline writes (:data:`WRITTEN_BY_THE_PIPELINE`) do not count.

    Returns:
        ``(commit, dirty)``. Outside a git repository (or before the first commit): the commit an
        image was built from (:data:`BUILT_FROM_COMMIT`), clean; else ``("none", True)``, since
        such a run cannot be reproduced from a commit.
    """
    try:
        commit = _git(project_dir, "rev-parse", "HEAD")
        excluded = [f":(exclude){name}" for name in WRITTEN_BY_THE_PIPELINE]
        dirty = bool(_git(project_dir, "status", "--porcelain", "--", ":/", *excluded))
    except (OSError, subprocess.CalledProcessError):
        built_from = os.environ.get(BUILT_FROM_COMMIT, "").strip().lower()
        if _COMMIT_PATTERN.match(built_from):
            return built_from, False
        return "none", True
    return commit, dirty


def file_hash(path: Path) -> str:
    """The SHA-256 of a file's bytes, or ``missing`` when it does not exist."""
    if not path.is_file():
        return "missing"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def params_hash(params: Params) -> str:
    """A stable SHA-256 of the parameters as validated (key order and comments do not count)."""
    canonical = json.dumps(params.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def lineage_tags(
    project_dir: Path,
    params: Params,
    data: Mapping[str, str],
) -> dict[str, str]:
    """Every lineage tag of a run: code, data (from the data run record), params, environment.

    Args:
        project_dir: The project folder (git work tree, ``uv.lock``).
        params: The validated parameters the run uses.
        data: The data-side tags (:data:`TAG_DATA_VERSION`, :data:`TAG_DBT_INVOCATION`,
            :data:`TAG_VALIDATION`) taken from the data run record.

    Returns:
        Tag name to value, all strings.
    """
    commit, dirty = git_state(project_dir)
    tags = {
        TAG_GIT_COMMIT: commit,
        TAG_GIT_DIRTY: str(dirty).lower(),
        TAG_DATA_VERSION: UNKNOWN,
        TAG_DBT_INVOCATION: UNKNOWN,
        TAG_VALIDATION: UNKNOWN,
        TAG_PARAMS_HASH: params_hash(params),
        TAG_LOCK_HASH: file_hash(project_dir / "uv.lock"),
        TAG_PYTHON: platform.python_version(),
    }
    tags.update(data)
    return tags


def refuse_dirty_outside_local(tags: Mapping[str, str], environment: str) -> None:
    """On ``local`` a dirty tree is only marked (the tag); elsewhere it is refused.

    Raises:
        DirtyTreeError: when the tree is dirty and `environment` is not ``local``.
    """
    if tags.get(TAG_GIT_DIRTY) == "true" and environment != "local":
        raise DirtyTreeError(
            f"the git work tree has uncommitted changes (commit {tags.get(TAG_GIT_COMMIT)}); "
            f"ENVIRONMENT={environment} trains only from a clean commit: commit or stash first "
            f"(in an image without .git: build it with --build-arg {BUILT_FROM_COMMIT}=<sha>)"
        )
    if tags.get(TAG_GIT_DIRTY) == "true":
        logger.warning("Training from a dirty work tree: the run is tagged %s=true", TAG_GIT_DIRTY)


def _git(project_dir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project_dir, capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
