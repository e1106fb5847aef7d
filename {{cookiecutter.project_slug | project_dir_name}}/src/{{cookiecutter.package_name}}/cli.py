"""The command line: one command per pipeline step, `python -m <package> <step>`.

Make targets and DVC stages call these commands, so each step has exactly one implementation.
Heavy libraries (dbt, Great Expectations, MLflow) are imported inside the command that needs
them, so `--help` and the light commands start fast. Every command runs under :func:`step`: a
:class:`~.errors.StepError` (the package's errors a user can act on) becomes its message on
stderr and its exit code (2 for a bad setting or parameter, 1 for the rest); anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from .config import ConfigError, disable_telemetry, get_settings
from .errors import StepError
from .logs import configure_logging
from .params import load_params

app = typer.Typer(
    help="Run the steps of the MLOps loop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
logger = logging.getLogger(__name__)


def fail(error: StepError) -> NoReturn:
    """End the command: `error`'s message on stderr, its exit code."""
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    raise typer.Exit(error.exit_code) from None


def step(command: Callable[..., None]) -> Callable[..., None]:
    """Run `command`; a :class:`StepError` becomes its message on stderr and its exit code."""

    @functools.wraps(command)  # Typer reads the command's own signature through this
    def run(*args: object, **kwargs: object) -> None:
        try:
            command(*args, **kwargs)
        except StepError as error:
            fail(error)

    return run


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    """Check the settings, configure logging and switch telemetry off before any step runs."""
    disable_telemetry()
    try:
        settings = get_settings()
    except ConfigError as error:
        fail(error)
    configure_logging("DEBUG" if verbose else settings.log_level)


@app.command()
@step
def info() -> None:
    """Print the resolved settings and parameters as JSON: where everything is, and what is set."""
    settings = get_settings()
    payload = {
        "settings": settings.model_dump(mode="json"),
        "params": load_params(settings.params_file).model_dump(mode="json"),
    }
    typer.echo(json.dumps(payload, indent=2))


@app.command()
@step
def data() -> None:
    """Generate the demo source tables (seeded) into data/raw/, as CSV that DVC versions."""
    from .data.generate import demo_tables, write_tables
    from .params import demo_source

    settings = get_settings()
    demo = demo_source(load_params(settings.params_file), "`data` (the demo generator)")
    for name, path in write_tables(demo_tables(demo), settings.raw_dir).items():
        typer.echo(f"{name}: {path}")


@app.command()
@step
def transform() -> None:
    """Check and load the raw tables, then build the warehouse with dbt (models and tests)."""
    from .data.build import build_warehouse

    settings = get_settings()
    result = build_warehouse(settings, load_params(settings.params_file))
    typer.echo(f"warehouse built: dbt invocation {result.invocation_id}, tests {result.tests}")


@app.command()
@step
def validate() -> None:
    """Run the Great Expectations gate on the feature table; record the data run if it passes."""
    from .data.record import record_data_run
    from .validation import ValidationFailedError, run_validation, validation_report_path

    settings = get_settings()
    report = run_validation(settings, load_params(settings.params_file).validation)
    if not report.success:
        for outcome in report.failed:
            typer.secho(f"FAILED {outcome.describe()}", err=True, fg=typer.colors.RED)
        raise ValidationFailedError(
            f"{len(report.failed)} of {report.evaluated} expectations failed on the feature "
            f"table; details in {validation_report_path(settings)}"
        )
    path = record_data_run(settings, report)
    typer.echo(f"validation passed ({report.evaluated} expectations); data run recorded in {path}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dbt(context: typer.Context) -> None:
    """Run any dbt command on the project's dbt project, e.g. `dbt docs generate`."""
    from .data.build import run_dbt

    completed = run_dbt(get_settings(), context.args)
    typer.echo(completed.stdout, nl=False)
    typer.echo(completed.stderr, nl=False, err=True)
    raise typer.Exit(completed.returncode)


@app.command("dvc-setup")
@step
def dvc_setup() -> None:
    """Initialise DVC if needed, switch its analytics off and point it at the data remote."""
    from .data.versioning import setup_dvc

    typer.echo(f"DVC remote: {setup_dvc(get_settings())}")


@app.command("pre-repro")
@step
def pre_repro() -> None:
    """Before `dvc repro` (Make runs it): refuse hand-edited raw data, pin the warehouse."""
    from .data.versioning import prepare_repro

    prepare_repro(get_settings())


@app.command()
@step
def adopt(
    file: Annotated[Path, typer.Argument(help="Your table: a CSV with a header row, or Parquet.")],
    id_column: Annotated[str, typer.Option("--id", help="The column that identifies a row.")],
    label: Annotated[str, typer.Option("--label", help="The column the model learns.")],
    sensitive: Annotated[
        str, typer.Option("--sensitive", help="Comma-separated columns for fairness slices only.")
    ] = "",
) -> None:
    """Make your own table the project's data: dbt models, contract, params, DVC (README)."""
    from .data.adopt import adopt as adopt_table

    settings = get_settings()
    names = [name.strip() for name in sensitive.split(",") if name.strip()]
    done = adopt_table(settings, file.expanduser(), id_column, label, names)
    root = settings.project_dir
    profile = done.profile
    typer.echo(f"adopted {profile.file} ({profile.rows} rows) as {done.raw_file.relative_to(root)}")
    typer.echo("wrote: " + ", ".join(str(path.relative_to(root)) for path in done.written))
    if done.removed:
        typer.echo(
            "removed the demo's: " + ", ".join(str(p.relative_to(root)) for p in done.removed)
        )
    typer.echo(
        f"features ({len(done.features)}): {', '.join(done.features)}\n"
        "left for you to decide (then `make all`):\n"
        f"  - train.positive_class in params.yaml: {done.positive_class!r}, the rarest label\n"
        "  - sensitive columns: "
        + (", ".join(done.sensitive) if done.sensitive else "none, so fairness is not assessed")
        + " (meta.role: sensitive in transform/models/marts/features.yml)\n"
        "  - validation (ranges, label_share, max_null_share) in params.yaml: proposed from it\n"
        "  - the gate: thresholds in params.yaml (gate:), expectations (evaluate.directional, "
        "evaluate.cases)\n"
        "  - features to derive: transform/models/marts/features.sql and its contract\n"
        "commit the changes and the DVC file: git add --all && git commit (then `make data-push`)"
    )


@app.command()
@step
def train() -> None:
    """Train the model from params.yaml on validated data and record the run in MLflow."""
    from .training import train_model

    settings = get_settings()
    run = train_model(settings, load_params(settings.params_file))
    typer.echo(f"run {run.run_id}: {run.estimator}, model {run.model_uri} ({run.seconds:.1f} s)")


@app.command()
@step
def evaluate() -> None:
    """Evaluate the latest model: held-out metrics, post-train tests, champion comparison."""
    from .evaluation.report import HEADLINE
    from .evaluation.step import evaluate_latest

    settings = get_settings()
    report = evaluate_latest(settings, load_params(settings.params_file))
    typer.echo(f"{HEADLINE} {report.metrics[HEADLINE]:.3f}")
    marks = {"pass": "pass", "fail": "FAIL", "not_assessed": "n/a "}
    for check in report.checks:
        typer.echo(f"  {marks[check.status]}  {check.name}: {check.detail}")
    if report.not_assessed:
        typer.secho(
            f"NOT ASSESSED ({len(report.not_assessed)}): {', '.join(report.not_assessed)}; "
            "they do not block promotion unless gate.block_not_assessed is true",
            fg=typer.colors.YELLOW,
        )
    typer.echo("all post-train tests passed" if report.passed else "post-train tests FAILED")


@app.command()
@step
def register() -> None:
    """Register the latest evaluated model as a new version with the alias `challenger`."""
    from .registry import register_latest

    settings = get_settings()
    version = register_latest(settings)
    typer.echo(f"{settings.model_name} v{version.version} is the challenger")


@app.command()
@step
def promote() -> None:
    """Move `champion` to the challenger if it passes the gate; otherwise list why not (exit 1)."""
    from .registry import promote as promote_challenger

    settings = get_settings()
    version = promote_challenger(settings, load_params(settings.params_file))
    typer.echo(f"{settings.model_name} v{version} is the champion")


@app.command()
@step
def rollback() -> None:
    """Move `champion` back to the previous champion."""
    from .registry import rollback as roll_back

    settings = get_settings()
    typer.echo(f"{settings.model_name} v{roll_back(settings)} is the champion again")


@app.command("gate-report")
@step
def gate_report(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            envvar="GITHUB_STEP_SUMMARY",
            help="Also append the Markdown to this file (in GitHub Actions: the job summary).",
        ),
    ] = None,
) -> None:
    """Print the latest evaluation and the gate's verdict as Markdown; exit 1 if it refuses."""
    from .evaluation.summary import GateRefusedError
    from .evaluation.summary import gate_report as summarize

    settings = get_settings()
    report = summarize(settings, load_params(settings.params_file))
    typer.echo(report.markdown, nl=False)
    if output is not None:
        with output.open("a", encoding="utf-8") as summary:
            summary.write(report.markdown)
    if not report.passed:
        reasons = "\n".join(f"  - {reason}" for reason in report.reasons)
        raise GateRefusedError(f"the gate refuses the evaluated model:\n{reasons}")


@app.command("smoke-test")
@step
def smoke_test(
    url: Annotated[str, typer.Argument(help="The deployed service, e.g. https://staging.example")],
    canary_fraction: Annotated[
        float | None,
        typer.Option(help="Also check that this share of requests goes to the challenger."),
    ] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for /ready.")] = 120.0,
) -> None:
    """Check a deployed service: ready, this commit's contract, a prediction, a 4xx refusal."""
    from .contract import load_contract
    from .smoke import smoke_test as check_service

    settings = get_settings()
    checks = check_service(
        url,
        load_contract(settings),
        api_key=settings.api_key.get_secret_value(),
        canary_fraction=canary_fraction,
        wait_seconds=wait,
    )
    for check in checks:
        typer.echo(f"  pass  {check.name}: {check.detail}")
    typer.echo(f"{url}: all {len(checks)} smoke checks passed")


@app.command()
@step
def lineage(
    reference: Annotated[
        str, typer.Argument(help="A model version number, or an alias such as champion.")
    ] = "champion",
) -> None:
    """Print where a model version came from: run, data version, dbt invocation, commit, tests."""
    from .registry import lineage as lineage_of

    typer.echo(json.dumps(lineage_of(get_settings(), reference), indent=2))


@app.command("docs-pages")
@step
def docs_pages() -> None:
    """Write the docs site's generated pages: dbt docs, validation result, API example."""
    from .documentation.pages import write_generated_pages

    for path in write_generated_pages(get_settings()):
        typer.echo(f"wrote {path}")


@app.command("model-card")
@step
def model_card(
    reference: Annotated[
        str, typer.Argument(help="A model version number, or an alias such as champion.")
    ] = "champion",
) -> None:
    """Write the model card of a version into docs/model-cards/ and store it with the version."""
    from .documentation.model_card import write_model_card

    card = write_model_card(get_settings(), reference)
    typer.echo(f"model card of v{card.version}: {card.path} (stored as {card.artifact_uri})")
    if card.open_items:
        typer.echo(f"{len(card.open_items)} open item(s): answer them in governance.yaml")
        for item in card.open_items:
            typer.echo(f"  - {item}")


@app.command()
@step
def monitor(
    fail_on_alarm: Annotated[
        bool,
        typer.Option(
            "--fail-on-alarm",
            envvar="FAIL_ON_ALARM",
            help="Exit with code 3 when retraining is recommended (drift, a performance breach "
            "realised or estimated) and 4 on a data-quality alarm (repair the inputs first).",
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
    from .monitoring.monitor import run_monitor
    from .monitoring.reference import load_reference_file

    settings = get_settings()
    params = load_params(settings.params_file)
    profile = load_reference_file(Path(reference)) if reference else None
    result = run_monitor(settings, params, batch_id=batch_id, reference=profile)
    summary = result.summary
    drifted = ", ".join(summary.drift.drifted_features) if summary.drift else ""
    typer.echo(
        f"{summary.status}: {summary.window.description} ({summary.window.rows} rows) vs "
        f"v{summary.model_version}; drifted features: {drifted or 'none'}; performance: "
        f"{summary.performance.status}"
    )
    for line in (
        *(issue.message for issue in (summary.quality.issues if summary.quality else [])),
        *(summary.estimate.reasons if summary.estimate else []),
        *(f"warning: {warning}" for warning in summary.warnings),
    ):
        typer.echo(f"  {line}")
    typer.echo(f"report: {result.html_path}")
    if fail_on_alarm and result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command("drift-demo")
@step
def drift_demo(
    scenario: Annotated[
        str, typer.Argument(help="none | sudden | gradual | incremental | recurring")
    ] = "sudden",
) -> None:
    """Emit production batches with drift `scenario`, score and log them, monitor each one."""
    from .monitoring.feedback import run_drift_demo

    settings = get_settings()
    results = run_drift_demo(settings, load_params(settings.params_file), scenario)
    for result in results:
        summary = result.summary
        share = summary.drift.drift_share if summary.drift else 0.0
        score_psi = f"{summary.drift.prediction.psi:.3f}" if summary.drift else "not judged"
        judged = summary.performance
        typer.echo(
            f"{summary.window.description}: {summary.status}, drift share {share:.0%}, score PSI "
            f"{score_psi}, performance {judged.status}"
            + (f" ({judged.judged_period})" if judged.judged_period else "")
        )
    typer.echo(f"report: {results[-1].html_path}")


@app.command("fold-labels")
@step
def fold_labels() -> None:
    """Fold production batches whose labels arrived into the raw data (a new DVC version)."""
    from .monitoring.feedback import fold_labelled_batches

    settings = get_settings()
    if load_params(settings.params_file).data.source != "demo":
        typer.echo(
            "nothing to fold: drift-demo batches exist with the demo source only; your own files "
            "bring their new labels themselves (update them, `uv run dvc add` them, `make all`)"
        )
        return
    folded = fold_labelled_batches(settings)
    typer.echo(f"folded {len(folded)} labelled batch(es) into the raw data")


@app.command()
@step
def score(
    run_date: Annotated[
        str | None,
        typer.Option("--run-date", help="The date scored (YYYY-MM-DD, default today); replaced."),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows per chunk.")
    ] = 50_000,
) -> None:
    """Score the rows whose label is not known yet with the champion, into PREDICTIONS_PATH."""
    from datetime import date

    from .batch import run_scoring

    try:
        day = date.fromisoformat(run_date) if run_date else None
    except ValueError as error:
        raise ConfigError(f"--run-date {run_date!r}: expected YYYY-MM-DD ({error})") from None
    with typer.progressbar(length=1, label="scoring", show_pos=True) as bar:

        def set_total(total: int) -> None:
            bar.length = max(total, 1)

        result = run_scoring(
            get_settings(), day, chunk_rows, progress=bar.update, on_total=set_total
        )
    if not result.rows:
        typer.echo(
            "nothing to score: every row of the feature table has its label (new rows, with the "
            "label left empty, are what `make score` scores)"
        )
        return
    typer.echo(
        f"scored {result.rows} rows with {result.model_name} v{result.model_version} into "
        f"{result.table} (run date {result.run_date}) on {result.engine} in {result.seconds:.1f} s"
    )


@app.command()
@step
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
    from .serving.server import serve as run_server

    overrides = {"port": port, "serving_host": host, "serving_workers": workers}
    settings = get_settings().model_copy(
        update={key: value for key, value in overrides.items() if value is not None}
    )
    run_server(settings)


@app.command()
@step
def bundle(
    output: Annotated[
        str, typer.Option("--output", help="Folder to write (replaced).")
    ] = "build/model",
    alias: Annotated[str, typer.Option("--alias", help="Which alias to bundle.")] = "champion",
) -> None:
    """Write a model version with its contract to a folder, for images that carry their model."""
    from .serving.loader import export_bundle

    settings = get_settings()
    folder = Path(output) if Path(output).is_absolute() else settings.project_dir / output
    manifest = export_bundle(settings, folder, alias)
    typer.echo(f"{manifest['name']} v{manifest['version']} ({alias}) bundled in {folder}")
