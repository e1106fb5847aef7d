"""governance.yaml: answers are typed, typos refused, and what is missing is listed, not guessed."""

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import ConfigError
from {{ cookiecutter.package_name }}.documentation.governance import (
    Governance,
    Risk,
    load_governance,
    open_items,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_the_shipped_file_is_valid_and_leaves_the_teams_answers_open() -> None:
    governance = load_governance(PROJECT_DIR / "governance.yaml")
    missing = open_items(governance)
    assert "`business.problem`: the problem the model solves" in missing
    assert any(item.startswith("`sign_off`") for item in missing)
    assert governance.risk.level is None


def test_a_missing_file_is_every_answer_open(tmp_path: Path) -> None:
    assert load_governance(tmp_path / "governance.yaml") == Governance()
    assert len(open_items(Governance())) == len(open_items(load_governance(tmp_path / "x.yaml")))


def test_given_answers_are_no_longer_open_items() -> None:
    answered = Governance.model_validate(
        {
            "business": {"problem": "unpaid invoices"},
            "risk": {"likelihood": 2, "impact": 4, "mitigations": ["a human reviews refusals"]},
            "sign_off": {"name": "A. Lead", "date": "2026-01-31", "decision": "accepted"},
        }
    )
    missing = "\n".join(open_items(answered))
    for key in ("business.problem", "risk.likelihood", "risk.mitigations", "sign_off"):
        assert f"`{key}`" not in missing
    assert "`business.decision`" in missing


@pytest.mark.parametrize(
    ("likelihood", "impact", "level"),
    [(1, 1, "low"), (2, 2, "low"), (1, 5, "medium"), (3, 3, "medium"), (2, 5, "high"),
     (4, 4, "high"), (4, 5, "critical"), (5, 5, "critical")],
)  # fmt: skip
def test_risk_level_is_likelihood_times_impact_in_bands(
    likelihood: int, impact: int, level: str
) -> None:
    risk = Risk(likelihood=likelihood, impact=impact)
    assert risk.score == likelihood * impact
    assert risk.level == level


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("risk: {likelihood: 7}", "risk.likelihood"),
        ("owner: {team: x, phone: 1}", "owner.phone"),
        ("deployment: streaming", "deployment"),
        ("sign_off: {decision: maybe}", "sign_off.decision"),
        ("risk: [unclosed", "not valid YAML"),
    ],
)
def test_a_bad_answer_is_refused_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "governance.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_governance(path)
