"""Data versioning with DVC: initialise the repository's DVC config and its default remote.

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
    from ..config import Settings

logger = logging.getLogger(__name__)

REMOTE_NAME = "storage"


class DataVersioningError(StepError):
    """A DVC command failed; its output is in the message."""


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
