"""Refuse bad answers before cookiecutter writes any file (it then removes the project folder)."""

import json
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

sys.path.insert(0, {{ template_hooks_dir | tojson }})
from template_hooks import format_errors, validate_answers  # noqa: E402

errors = validate_answers(ANSWERS)
if errors:
    sys.stderr.write(format_errors(errors) + "\n")
    sys.exit(1)
