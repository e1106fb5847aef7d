"""Dagster: the whole loop as assets, with lineage, checks, schedules and sensors.

Each asset calls the same package function as the matching CLI command, so Dagster, DVC and
Make are three ways to run one implementation; the assets that run a DVC stage's step record it
in ``dvc.lock`` (:func:`~..data.versioning.record_stage`), so DVC sees what Dagster built.

Nothing outside this sub-package imports Dagster: the CLI and the prediction service never pay
for it. ``definitions.py`` holds the one ``Definitions`` object that ``dagster``, ``dg`` and the
tests load (``[tool.dagster]`` in ``pyproject.toml``).
"""
