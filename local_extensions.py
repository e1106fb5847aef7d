"""Jinja extensions that cookiecutter loads from this folder (named in `_extensions`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from jinja2 import Environment
from jinja2.ext import Extension

_spec = importlib.util.spec_from_file_location(
    "template_hooks", Path(__file__).resolve().parent / "hooks" / "template_hooks.py"
)
if _spec is None or _spec.loader is None:  # pragma: no cover - the file ships beside this one
    raise ImportError("hooks/template_hooks.py is missing from the template")
template_hooks = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = template_hooks  # dataclasses look their module up there
_spec.loader.exec_module(template_hooks)

# The folder cookiecutter creates when the slug is refused: the pre-gen hook then reports the
# slug and cookiecutter removes this folder, so a bad slug ("", "a/b", "../x") writes nothing.
REFUSED_DIR_NAME = ".cookiecutter-mlops-refused"


def project_dir_name(slug: str) -> str:
    """The project folder's name: the slug when it is valid, a throwaway name otherwise."""
    return slug if template_hooks.SLUG_PATTERN.match(slug) else REFUSED_DIR_NAME


class ProjectDirExtension(Extension):
    """Adds the `project_dir_name` filter (the project folder's name) and `template_hooks_dir`."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["project_dir_name"] = project_dir_name
        # The hooks import template_hooks from here: absolute, because cookiecutter's `_repo_dir`
        # is relative when the template is given as one (`cookiecutter .`) and hooks run elsewhere.
        environment.globals["template_hooks_dir"] = str(Path(_spec.origin or "").parent)
