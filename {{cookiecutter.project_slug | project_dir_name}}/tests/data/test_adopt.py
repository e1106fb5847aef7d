"""`make adopt`: a team's own table becomes the project's data, or is refused with the fix."""

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.contract import load_contract
from {{ cookiecutter.package_name }}.data.adopt import AdoptError, adopt, check_roles
from {{ cookiecutter.package_name }}.data.profile import profile_file
from {{ cookiecutter.package_name }}.data.warehouse import load_feature_table
from {{ cookiecutter.package_name }}.errors import StepError
from {{ cookiecutter.package_name }}.params import load_params

PROJECT_DIR = Path(__file__).resolve().parents[2]


def accounts(n_rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A table that is not the demo: an integer label (unknown on some rows), a categorical
    and a nullable feature, no sensitive column."""
    rng = np.random.default_rng(seed)
    calls = rng.poisson(2, n_rows)
    churned = (calls + rng.normal(0, 1, n_rows) > 3).astype(int)
    return pd.DataFrame(
        {
            "account_no": np.arange(1000, 1000 + n_rows),
            "plan": rng.choice(["basic", "plus", "pro"], n_rows),
            "support_calls": calls,
            "monthly_spend": np.where(rng.random(n_rows) < 0.05, np.nan, rng.gamma(2, 30, n_rows)),
            "churned": pd.array(np.where(rng.random(n_rows) < 0.1, None, churned), dtype="Int64"),
        }
    )


def refusal(
    tmp_path: Path,
    table: pd.DataFrame | str,
    *,
    id_column: str = "account_no",
    label: str = "churned",
) -> str:
    """Why adopting `table` (a frame, or a CSV's text) with these roles is refused."""
    path = tmp_path / "table.csv"
    if isinstance(table, str):
        path.write_text(table, encoding="utf-8")
    else:
        table.to_csv(path, index=False)
    with pytest.raises(StepError) as refused:  # AdoptError, or RawDataError for the file
        check_roles(profile_file(path), id_column, label, [])
    return str(refused.value)


def test_an_unknown_column_is_named_with_the_columns_there_are(tmp_path: Path) -> None:
    assert "ID='nope': no such column" in refusal(tmp_path, accounts(), id_column="nope")
    assert "account_no, plan" in refusal(tmp_path, accounts(), label="churn")


def test_an_id_that_repeats_is_refused_with_the_count(tmp_path: Path) -> None:
    table = accounts()
    table.loc[[3, 4], "account_no"] = table.loc[5, "account_no"]
    assert "must identify each row: 0 empty and 2 repeated value(s)" in refusal(tmp_path, table)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (lambda n: np.ones(n, dtype=int), "holds 1 value(s): a model needs at least two"),
        (lambda n: np.arange(n) % 25, "holds 25 distinct values: the loop classifies"),
    ],
)
def test_a_label_the_loop_cannot_learn_is_refused(tmp_path: Path, labels, message) -> None:
    table = accounts()
    table["churned"] = labels(len(table))
    assert message in refusal(tmp_path, table)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Monthly Spend", "cannot be carried by dbt and Python"),
        ("order", "cannot be carried by dbt and Python"),  # a SQL keyword
        ("score", "names the prediction log gives its own columns"),
    ],
)
def test_a_column_name_the_loop_cannot_carry_is_refused(
    tmp_path: Path, name: str, message: str
) -> None:
    assert message in refusal(tmp_path, accounts().rename(columns={"plan": name}))


def test_a_file_that_is_not_a_table_is_refused_with_its_line(tmp_path: Path) -> None:
    text = "account_no,plan,churned\n1,basic,0\n2,plus\n3,pro,1\n"
    assert "table.csv: cannot read it as a CSV table: line 3: 2 field(s)" in refusal(tmp_path, text)


def test_nothing_is_written_without_dvc_or_over_another_file(tmp_path: Path) -> None:
    source = tmp_path / "accounts.csv"
    accounts().to_csv(source, index=False)
    project = tmp_path / "project"
    project.mkdir()
    settings = Settings(project_dir=project)
    with pytest.raises(AdoptError, match="DVC is not set up in this project: run `make setup`"):
        adopt(settings, source, "account_no", "churned", [])
    (project / ".dvc").mkdir()
    settings.raw_dir.mkdir(parents=True)
    (settings.raw_dir / "accounts.csv").write_text("someone else's\n", encoding="utf-8")
    with pytest.raises(AdoptError, match=r"accounts\.csv already exists: move it away"):
        adopt(settings, source, "account_no", "churned", [])
    assert (settings.raw_dir / "accounts.csv").read_text(encoding="utf-8") == "someone else's\n"
    assert not (project / "params.yaml").exists()


@pytest.mark.slow
def test_adopting_a_table_makes_it_the_data(
    tmp_path: Path, make_scratch_project: Callable[..., Path], run: Callable[..., str]
) -> None:
    project = make_scratch_project(tmp_path / "project", with_code=True, versioned=True)
    shutil.copy2(PROJECT_DIR / "params.yaml", project / "params.yaml")  # comments and all
    # The demo ran: its raw table `customers.csv` is there, and the team's file has that name.
    (project / "data" / "raw").mkdir(parents=True, exist_ok=True)
    (project / "data" / "raw" / "customers.csv").write_text("the demo's\n", encoding="utf-8")
    table = accounts()
    (tmp_path / "export").mkdir()
    table.to_csv(tmp_path / "export" / "customers.csv", index=False)
    cli = (sys.executable, "-m", "{{ cookiecutter.package_name }}")

    told = run(
        project,
        *cli,
        "adopt",
        str(tmp_path / "export" / "customers.csv"),
        "--id",
        "account_no",
        "--label",
        "churned",
    )

    assert "left for you to decide" in told
    assert "sensitive columns: none, so fairness is not assessed" in told
    # The contract: found by its roles, in a neutrally named mart; the label may be empty.
    settings = Settings(project_dir=project)
    contract = load_contract(settings)
    assert (contract.model, contract.id_column, contract.label_column) == (
        "features",
        "account_no",
        "churned",
    )
    assert contract.label_values == ("0", "1")
    assert contract.column("churned").nullable
    assert contract.column("monthly_spend").nullable
    assert contract.column("plan").accepted_values == ("basic", "plus", "pro")
    assert not contract.sensitive_columns
    # params.yaml: the source, proposals from the data, and every comment where it was.
    params = load_params(settings.params_file)
    assert params.data.source == "files"
    assert params.train.positive_class == "1"  # the rarer outcome
    assert set(params.validation.ranges) == {"support_calls", "monthly_spend"}
    assert not params.evaluate.directional
    assert not params.evaluate.cases
    text = settings.params_file.read_text(encoding="utf-8")
    assert "# The gate (`make promote`)" in text.split("\ngate:\n")[0].splitlines()[-1]
    # DVC tracks the file; the demo's generator stage and dbt files are gone.
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert "data" not in stages
    assert "data/raw/customers.csv" in stages["transform"]["deps"]
    assert (project / "data" / "raw" / "customers.csv.dvc").is_file()
    assert not list((project / "transform").rglob("customer_features.*"))
    assert "account_no" in (project / "transform/models/staging/stg_customers.sql").read_text()

    # The adopted data build, pass their own gate, and split into training and scoring rows.
    run(project, sys.executable, "-m", "dvc", "repro", "validate")
    features = load_feature_table(settings, contract)
    assert len(features) == len(table)
    unknown = int(table["churned"].isna().sum())
    assert len(load_feature_table(settings, contract, rows="unlabelled")) == unknown
