"""`python -m <package> <step>`: the one entry point that Make and DVC call."""

from .cli import app

app(prog_name=__package__)
