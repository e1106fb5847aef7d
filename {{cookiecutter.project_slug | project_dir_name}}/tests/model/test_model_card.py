"""The model card: written from what the registry and the run recorded, stored with the version."""

from pathlib import Path

import mlflow
import yaml
from mlflow import MlflowClient
from test_lifecycle import DATA_TAGS, candidate, inverted
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.documentation.model_card import CARD_TAG, CARDS_DIR, NOT_RECORDED
from {{ cookiecutter.package_name }}.evaluation.summary import format_number
from {{ cookiecutter.package_name }}.provenance import TAG_DATA_VERSION
from {{ cookiecutter.package_name }}.registry import promote

runner = CliRunner()
GOVERNANCE = {
    "owner": {"team": "Credit risk analytics", "email": "credit-risk@example.com"},
    "business": {"problem": "New customers who never pay cost the business money."},
    "risk": {"likelihood": 2, "impact": 3, "mitigations": ["a person reviews every refusal"]},
}


def section(card: str, title: str) -> str:
    """The text of one `## title` section of the card."""
    return card.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_champions_card_holds_its_recorded_figures_and_the_teams_answers(
    settings, params, table, contract, project: Path
) -> None:
    first = candidate(settings, params, table, contract)
    promote(settings, params)
    (project / "governance.yaml").write_text(yaml.safe_dump(GOVERNANCE), encoding="utf-8")

    result = runner.invoke(app, ["model-card"])
    assert result.exit_code == 0, result.output
    path = project / CARDS_DIR / f"{settings.model_name}-v1.md"
    card = path.read_text(encoding="utf-8")

    report = first["report"]
    assert f"**{format_number(report.metrics['precision'])}**" in card
    assert f"| roc_auc | {format_number(report.metrics['roc_auc'])} | none |" in card
    for check in report.checks:
        assert f"| {check.name} | pass |" in section(card, "Validation")
    for feature in contract.feature_columns:
        assert f"| `{feature}` | feature |" in section(card, "Contract")
        assert f"| `{feature}` |" in section(card, "Feature selection")  # its importance
    for attribute in contract.sensitive_columns:
        assert f"**`{attribute}`**: demographic-parity difference" in card
    assert DATA_TAGS[TAG_DATA_VERSION] in section(card, "Modelling dataset")
    assert f"{first['run'].run_id}" in card
    assert "Champion history: v1." in card
    assert NOT_RECORDED not in card

    # The team's answers, and nothing invented where it gave none.
    assert "New customers who never pay cost the business money." in card
    assert "**medium**: likelihood 2 x impact 3 = 6" in card
    assert "Credit risk analytics" in card
    still_open = section(card, "Open items")
    assert "`business.decision`" in still_open
    assert "`sign_off`" in still_open
    assert "`business.problem`" not in still_open
    assert "`risk.likelihood`" not in still_open
    assert "open item(s): answer them in governance.yaml" in result.stdout

    # The same file is stored with the version, and the index lists it.
    record = MlflowClient(settings.mlflow_tracking_uri).get_model_version(settings.model_name, "1")
    stored = Path(mlflow.artifacts.download_artifacts(record.tags[CARD_TAG]))
    assert stored.read_text(encoding="utf-8") == card
    index = (project / CARDS_DIR / "index.md").read_text(encoding="utf-8")
    assert f"({settings.model_name}-v1.md)" in index


def test_the_card_of_a_refused_version_shows_its_failures_and_that_it_never_served(
    settings, params, table, contract, project: Path
) -> None:
    candidate(settings, params, table, contract)
    promote(settings, params)
    assert runner.invoke(app, ["model-card"]).exit_code == 0
    worse = candidate(settings, params, table, contract, train_on=inverted(table))
    assert not worse["report"].passed

    result = runner.invoke(app, ["model-card", worse["version"]])
    assert result.exit_code == 0, result.output
    card = (project / CARDS_DIR / f"{settings.model_name}-v2.md").read_text(encoding="utf-8")
    assert "| aliases | `challenger` |" in card
    assert "- Promoted: never." in card
    for name in worse["report"].failed:
        assert f"| {name} | **FAIL** |" in card
    assert "Verdict of the tests: **failed: " in card
    assert "| metric | this version | champion v1 |" in card
    index = (project / CARDS_DIR / "index.md").read_text(encoding="utf-8")
    assert index.index("-v2.md") < index.index("-v1.md")  # newest first


def test_no_champion_is_a_clear_error_and_writes_nothing(
    settings, params, table, contract, project: Path
) -> None:
    candidate(settings, params, table, contract)  # registered, never promoted
    result = runner.invoke(app, ["model-card"])
    assert result.exit_code == 1
    assert "has no champion: challenger v1 is waiting; run `make promote`" in result.output
    missing = runner.invoke(app, ["model-card", "7"])
    assert missing.exit_code == 1
    assert "has no version 7" in missing.output
    assert not (project / CARDS_DIR).exists()


def test_a_bad_governance_file_is_refused_before_anything_is_written(
    settings, params, table, contract, project: Path
) -> None:
    candidate(settings, params, table, contract)
    promote(settings, params)
    (project / "governance.yaml").write_text("risk: {impact: 9}\n", encoding="utf-8")
    result = runner.invoke(app, ["model-card"])
    assert result.exit_code == 2
    assert "governance.yaml: risk.impact:" in result.output
    assert not (project / CARDS_DIR).exists()
