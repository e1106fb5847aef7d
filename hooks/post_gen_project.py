"""Prune the files of options that are off, record the answers and `git init` the new project."""

import json
import sys
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

sys.path.insert(0, {{ template_hooks_dir | tojson }})
from template_hooks import finish  # noqa: E402

# The template's own folder, absolute (cookiecutter's `_repo_dir` is relative to where it ran).
finish(Path.cwd(), ANSWERS, Path({{ template_hooks_dir | tojson }}).parent)
