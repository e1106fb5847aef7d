"""The docs site's validation page: the latest result as it is, or which step makes it."""

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import get_settings
from {{ cookiecutter.package_name }}.documentation.pages import write_validation_page
from {{ cookiecutter.package_name }}.validation import (
    ExpectationOutcome,
    ValidationReport,
    read_validation_report,
    validation_report_path,
)


@pytest.mark.usefixtures("project")
def test_before_any_validation_the_page_names_the_step(tmp_path: Path) -> None:
    page = write_validation_page(get_settings(), tmp_path / "validation.md").read_text()
    assert "No validation has run in this checkout yet: `make validate` runs it." in page


@pytest.mark.usefixtures("project")
def test_the_page_shows_the_verdict_and_every_expectation(tmp_path: Path) -> None:
    settings = get_settings()
    report = ValidationReport(
        success=False,
        suite="feature_table",
        rows=1200,
        evaluated=2,
        validated_at="2026-01-31T02:00:00+00:00",
        outcomes=[
            ExpectationOutcome("expect_table_row_count_to_be_between", None, True, observed=1200),
            ExpectationOutcome(
                "expect_column_values_to_be_between", "return_rate", False, 3, [1.5, 2.0]
            ),
        ],
    )
    path = validation_report_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(report.to_json(), encoding="utf-8")
    assert read_validation_report(settings) == report  # what the page is written from

    page = write_validation_page(settings, tmp_path / "validation.md").read_text()
    assert "**FAILED (1 expectation(s))**, 2 expectations evaluated" in page
    assert "| expect_table_row_count_to_be_between |  | pass | 1200 |" in page
    assert "| expect_column_values_to_be_between | return_rate | **FAIL** | [1.5, 2.0] |" in page
