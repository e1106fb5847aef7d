"""The command line: one command per pipeline step, `python -m <package> <step>`.

Make targets and DVC stages call these commands, so each step has exactly one implementation.
Heavy libraries (dbt, Great Expectations, MLflow) are imported inside the command that needs
them, so `--help` and the light commands start fast.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from .config import ConfigError, disable_telemetry, get_settings, load_params
from .logs import configure_logging

app = typer.Typer(
    help="Run the steps of the MLOps loop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
logger = logging.getLogger(__name__)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    """Configure logging and switch telemetry off before any step runs."""
    disable_telemetry()
    configure_logging("DEBUG" if verbose else get_settings().log_level)


@app.command()
def info() -> None:
    """Print the resolved settings and parameters as JSON: where everything is, and what is set."""
    settings = get_settings()
    try:
        params = load_params(settings.params_file)
    except ConfigError as error:
        fail(error)
    payload = {
        "settings": settings.model_dump(mode="json"),
        "params": params.model_dump(mode="json"),
    }
    typer.echo(json.dumps(payload, indent=2))


@app.command()
def data() -> None:
    """Generate the demo source tables (seeded) into data/raw/, as CSV that DVC versions."""
    from .data.generate import generate_tables, write_tables  # noqa: PLC0415

    settings = get_settings()
    try:
        params = load_params(settings.params_file).data
    except ConfigError as error:
        fail(error)
    tables = generate_tables(params.seed, params.n_customers, params.n_sales, params.extract_date)
    for name, path in write_tables(tables, settings.raw_dir).items():
        typer.echo(f"{name}: {path}")


@app.command()
def transform() -> None:
    """Check and load the raw tables, then build the warehouse with dbt (models and tests)."""
    from .data.ingest import RawDataError  # noqa: PLC0415
    from .transform import TransformError, build_warehouse  # noqa: PLC0415

    settings = get_settings()
    try:
        result = build_warehouse(settings, load_params(settings.params_file))
    except (ConfigError, RawDataError, TransformError) as error:
        fail(error, code=1)
    typer.echo(f"warehouse built: dbt invocation {result.invocation_id}, tests {result.tests}")


@app.command()
def validate() -> None:
    """Run the Great Expectations gate on the feature table; record the data run if it passes."""
    from .data.warehouse import WarehouseError  # noqa: PLC0415
    from .data_run import build_data_run_record, write_data_run_record  # noqa: PLC0415
    from .transform import transform_report_path  # noqa: PLC0415
    from .validation import run_validation, validation_report_path  # noqa: PLC0415

    settings = get_settings()
    try:
        params = load_params(settings.params_file)
        report = run_validation(settings, params.validation)
    except (ConfigError, WarehouseError, ValueError) as error:
        fail(error, code=1)
    if not report.success:
        for outcome in report.failed:
            typer.secho(f"FAILED {outcome.describe()}", err=True, fg=typer.colors.RED)
        fail(
            RuntimeError(
                f"{len(report.failed)} of {report.evaluated} expectations failed on the feature "
                f"table; details in {validation_report_path(settings)}"
            ),
            code=1,
        )
    transform_report = transform_report_path(settings)
    transform_result = (
        json.loads(transform_report.read_text(encoding="utf-8"))
        if transform_report.exists()
        else {}
    )
    path = write_data_run_record(
        settings, build_data_run_record(settings, transform_result, report)
    )
    typer.echo(f"validation passed ({report.evaluated} expectations); data run recorded in {path}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def dbt(context: typer.Context) -> None:
    """Run any dbt command on the project's dbt project, e.g. `dbt docs generate`."""
    from .transform import run_dbt  # noqa: PLC0415

    completed = run_dbt(get_settings(), context.args)
    typer.echo(completed.stdout, nl=False)
    typer.echo(completed.stderr, nl=False, err=True)
    raise typer.Exit(completed.returncode)


@app.command("dvc-setup")
def dvc_setup() -> None:
    """Initialise DVC if needed, switch its analytics off and point it at the data remote."""
    from .data.versioning import setup_dvc  # noqa: PLC0415

    settings = get_settings()
    try:
        remote = setup_dvc(settings)
    except RuntimeError as error:
        fail(error, code=1)
    typer.echo(f"DVC remote: {remote}")


@app.command()
def train() -> None:
    """Train the model from params.yaml on validated data and record the run in MLflow."""
    from .contract import load_contract  # noqa: PLC0415 (heavy steps import lazily)
    from .data.warehouse import load_feature_table  # noqa: PLC0415
    from .training import data_tags, run_training, save_training_run  # noqa: PLC0415

    settings = get_settings()
    try:
        params = load_params(settings.params_file)
        contract = load_contract(settings)
        tags = data_tags(settings)
        table = load_feature_table(settings, contract)
        run = run_training(settings, params, table, contract, tags)
    except (ConfigError, RuntimeError, ValueError, FileNotFoundError) as error:
        fail(error, code=1)
    save_training_run(settings, run)
    typer.echo(f"run {run.run_id}: {run.estimator}, model {run.model_uri} ({run.seconds:.1f} s)")


@app.command()
def evaluate() -> None:
    """Evaluate the latest model: held-out metrics, post-train tests, champion comparison."""
    from .contract import load_contract  # noqa: PLC0415
    from .data.warehouse import load_feature_table  # noqa: PLC0415
    from .evaluation import HEADLINE, run_evaluation  # noqa: PLC0415
    from .provenance import TAG_DATA_VERSION  # noqa: PLC0415
    from .training import data_tags  # noqa: PLC0415

    settings = get_settings()
    try:
        params = load_params(settings.params_file)
        contract = load_contract(settings)
        data_version = data_tags(settings).get(TAG_DATA_VERSION)
        table = load_feature_table(settings, contract)
        report = run_evaluation(settings, params, table, contract, data_version)
    except (ConfigError, RuntimeError, ValueError, FileNotFoundError) as error:
        fail(error, code=1)
    typer.echo(f"{HEADLINE} {report['metrics'][HEADLINE]:.3f}")
    marks = {"pass": "pass", "fail": "FAIL", "not_assessed": "n/a "}
    for check in report["checks"]:
        typer.echo(f"  {marks[check['status']]}  {check['name']}: {check['detail']}")
    if report["not_assessed"]:
        typer.secho(
            f"NOT ASSESSED ({len(report['not_assessed'])}): {', '.join(report['not_assessed'])}; "
            "they do not block promotion unless gate.block_not_assessed is true",
            fg=typer.colors.YELLOW,
        )
    typer.echo("all post-train tests passed" if report["passed"] else "post-train tests FAILED")


@app.command()
def register() -> None:
    """Register the latest evaluated model as a new version with the alias `challenger`."""
    from .registry import register as register_version  # noqa: PLC0415

    settings = get_settings()
    try:
        version = register_version(settings)
    except (RuntimeError, FileNotFoundError) as error:
        fail(error, code=1)
    typer.echo(f"{settings.model_name} v{version.version} is the challenger")


@app.command()
def promote() -> None:
    """Move `champion` to the challenger if it passes the gate; otherwise list why not (exit 1)."""
    from .registry import promote as promote_challenger  # noqa: PLC0415

    settings = get_settings()
    try:
        params = load_params(settings.params_file)
        version = promote_challenger(settings, params)
    except (ConfigError, RuntimeError) as error:
        fail(error, code=1)
    typer.echo(f"{settings.model_name} v{version} is the champion")


@app.command()
def rollback() -> None:
    """Move `champion` back to the previous champion."""
    from .registry import rollback as roll_back  # noqa: PLC0415

    settings = get_settings()
    try:
        version = roll_back(settings)
    except RuntimeError as error:
        fail(error, code=1)
    typer.echo(f"{settings.model_name} v{version} is the champion again")


@app.command()
def lineage(
    reference: Annotated[
        str, typer.Argument(help="A model version number, or an alias such as champion.")
    ] = "champion",
) -> None:
    """Print where a model version came from: run, data version, dbt invocation, commit, tests."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from .registry import lineage as lineage_of  # noqa: PLC0415

    try:
        payload = lineage_of(get_settings(), reference)
    except (RuntimeError, MlflowException) as error:
        fail(error, code=1)
    typer.echo(json.dumps(payload, indent=2))


@app.command()
def monitor(
    fail_on_drift: Annotated[
        bool,
        typer.Option(
            "--fail-on-drift",
            envvar="FAIL_ON_DRIFT",
            help="Exit with code 3 when drift or a performance breach is found (a retrain "
            "trigger for schedulers and CI).",
        ),
    ] = False,
    batch_id: Annotated[
        str | None, typer.Option("--batch-id", help="Judge this scoring batch (default: newest).")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="Compare with this reference profile (JSON file)."),
    ] = None,
) -> None:
    """Compare the newest logged predictions with the champion's reference; write the report."""
    from pathlib import Path  # noqa: PLC0415

    from .monitoring.monitor import EXIT_ALARM, MonitorError, run_monitor  # noqa: PLC0415
    from .monitoring.reference import load_reference_file  # noqa: PLC0415

    settings = get_settings()
    try:
        params = load_params(settings.params_file)
        profile = load_reference_file(Path(reference)) if reference else None
        result = run_monitor(settings, params, batch_id=batch_id, reference=profile)
    except (ConfigError, MonitorError, RuntimeError, FileNotFoundError, ValueError) as error:
        fail(error, code=1)
    summary = result.summary
    drift = summary.get("drift") or {}
    typer.echo(
        f"{summary['status']}: {summary['window']['description']} ({summary['window']['rows']} "
        f"rows) vs v{summary['model_version']}; drifted features: "
        f"{', '.join(drift.get('drifted_features', [])) or 'none'}; performance: "
        f"{summary['performance']['status']}"
    )
    typer.echo(f"report: {result.html_path}")
    if fail_on_drift and result.alarm:
        raise typer.Exit(EXIT_ALARM)


@app.command("drift-demo")
def drift_demo(
    scenario: Annotated[
        str, typer.Argument(help="none | sudden | gradual | incremental | recurring")
    ] = "sudden",
) -> None:
    """Emit production batches with drift `scenario`, score and log them, monitor each one."""
    from .data.generate import DRIFT_KINDS  # noqa: PLC0415
    from .monitoring.feedback import run_drift_demo  # noqa: PLC0415
    from .monitoring.monitor import MonitorError  # noqa: PLC0415

    settings = get_settings()
    if scenario not in DRIFT_KINDS:
        fail(ValueError(f"SCENARIO={scenario!r}: choose one of {', '.join(DRIFT_KINDS)}"))
    try:
        params = load_params(settings.params_file)
        results = run_drift_demo(settings, params, scenario)
    except (ConfigError, MonitorError, RuntimeError, FileNotFoundError, ValueError) as error:
        fail(error, code=1)
    for result in results:
        summary = result.summary
        drift = summary.get("drift") or {}
        judged = summary["performance"]
        typer.echo(
            f"{summary['window']['description']}: {summary['status']}, drift share "
            f"{drift.get('drift_share', 0):.0%}, score PSI {drift['prediction']['psi']:.3f}, "
            f"performance {judged['status']}"
            + (f" ({judged['judged_period']})" if judged["judged_period"] else "")
        )
    typer.echo(f"report: {results[-1].html_path}")


@app.command("fold-labels")
def fold_labels() -> None:
    """Fold production batches whose labels arrived into the raw data (a new DVC version)."""
    from .monitoring.feedback import fold_labelled_batches  # noqa: PLC0415

    try:
        folded = fold_labelled_batches(get_settings())
    except (RuntimeError, FileNotFoundError) as error:
        fail(error, code=1)
    typer.echo(f"folded {len(folded)} labelled batch(es) into the raw data")


@app.command()
def score(
    run_date: Annotated[
        str | None,
        typer.Option("--run-date", help="The date scored (YYYY-MM-DD, default today); replaced."),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows per chunk.")
    ] = 50_000,
) -> None:
    """Score the feature table with the champion into the warehouse's `predictions` table."""
    from datetime import date  # noqa: PLC0415

    from .batch import ScoringError, run_scoring  # noqa: PLC0415

    settings = get_settings()
    try:
        day = date.fromisoformat(run_date) if run_date else None
    except ValueError as error:
        fail(ValueError(f"--run-date {run_date!r}: expected YYYY-MM-DD ({error})"))
    with typer.progressbar(length=1, label="scoring", show_pos=True) as bar:

        def set_total(total: int) -> None:
            bar.length = max(total, 1)

        try:
            result = run_scoring(settings, day, chunk_rows, progress=bar.update, on_total=set_total)
        except ScoringError as error:
            fail(error, code=1)
    typer.echo(
        f"scored {result.rows} rows with {result.model_name} v{result.model_version} into "
        f"{result.table} (run date {result.run_date}) in {result.seconds:.1f} s"
    )


@app.command()
def serve(
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: the PORT setting, 8000).")
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Interface (default: SERVING_HOST, 127.0.0.1).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes (default: SERVING_WORKERS).")
    ] = None,
) -> None:
    """Serve the champion over HTTP (FastAPI + uvicorn) until interrupted."""
    from .serving.server import serve as run_server  # noqa: PLC0415

    settings = get_settings()
    overrides = {"port": port, "serving_host": host, "serving_workers": workers}
    settings = settings.model_copy(
        update={key: value for key, value in overrides.items() if value is not None}
    )
    run_server(settings)


@app.command()
def bundle(
    output: Annotated[
        str, typer.Option("--output", help="Folder to write (replaced).")
    ] = "build/model",
    alias: Annotated[str, typer.Option("--alias", help="Which alias to bundle.")] = "champion",
) -> None:
    """Write a model version with its contract to a folder, for images that carry their model."""
    from pathlib import Path  # noqa: PLC0415

    from .serving.loader import ModelUnavailableError, export_bundle  # noqa: PLC0415

    settings = get_settings()
    folder = Path(output) if Path(output).is_absolute() else settings.project_dir / output
    try:
        manifest = export_bundle(settings, folder, alias)
    except ModelUnavailableError as error:
        fail(error, code=1)
    typer.echo(f"{manifest['name']} v{manifest['version']} ({alias}) bundled in {folder}")


def fail(error: Exception, code: int = 2) -> typer.Exit:
    """Report a refused step on stderr and leave with `code` (raised, so it never returns)."""
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)
