"""`python -m <package> <step>`: the one entry point that Make, DVC and Dagster call."""

from .cli import app

app(prog_name=__package__)
