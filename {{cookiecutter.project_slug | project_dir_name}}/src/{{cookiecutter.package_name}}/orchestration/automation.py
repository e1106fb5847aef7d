"""Jobs, schedules and sensors: when the loop runs without anyone typing ``make``.

=====================  =====================================================  ==============
What                   Does                                                   On by default
=====================  =====================================================  ==============
``training`` job       raw data -> warehouse -> gate -> model -> champion
``scoring`` job        raw data -> warehouse -> gate -> predictions -> report
``nightly_scoring``    the scoring job at 02:00 UTC                           yes: it only
                                                                              reads the
                                                                              champion
``weekly_retraining``  the training job on Mondays at 03:00 UTC               no: the drift
                                                                              sensor retrains
                                                                              when needed
``retrain_on_alarm``   a training run per monitoring report that recommends   yes
                       retraining (drift, or a breach realised or estimated)
``evaluate_new_``      evaluates each new registry version                    yes
``versions``
=====================  =====================================================  ==============

Schedules and sensors run while the Dagster daemon does (``make dagster`` starts it). Each sensor
keeps a cursor, so one report or one version starts one run, and a restart does not repeat it.
"""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    in_process_executor,
    sensor,
)

from ..monitoring.monitor import MonitoringSummary, monitoring_dir
from .data import DATA_GROUP, WAREHOUSE_GROUP
from .deploy import model_versions
from .resources import ProjectResource

# Everything upstream of the champion: the data run, its checks, and the model run.
TRAINING = AssetSelection.assets("champion").upstream()
# A fresh data run, then scoring and monitoring; the model assets are not run.
SCORING = AssetSelection.groups(DATA_GROUP, WAREHOUSE_GROUP) | AssetSelection.assets(
    "predictions", "monitoring_report"
)

# The loop is a chain, so a run gains nothing from a process per step; one process per run saves
# the ~10 s each step would spend importing Dagster, dbt and MLflow again.
training_job = define_asset_job(
    "training",
    selection=TRAINING,
    executor_def=in_process_executor,
    description="The data run and the model run, up to champion.",
)
scoring_job = define_asset_job(
    "scoring",
    selection=SCORING,
    executor_def=in_process_executor,
    description="A fresh data run, batch scoring with the champion, and its monitoring report.",
)
loop_job = define_asset_job(
    "loop",
    selection=TRAINING | SCORING,
    executor_def=in_process_executor,
    description="The whole loop, as `make all` runs it: data to monitoring report.",
)
version_evaluation_job = define_asset_job(
    "evaluate_version",
    selection=AssetSelection.assets("version_evaluation"),  # partitioned by model version
    description="Evaluate one registered model version (a partition per version).",
)

nightly_scoring = ScheduleDefinition(
    name="nightly_scoring",
    job=scoring_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
weekly_retraining = ScheduleDefinition(
    name="weekly_retraining",
    job=training_job,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
)


def newest_summary(project: ProjectResource) -> MonitoringSummary | None:
    """The newest monitoring report's summary (``reports/monitoring/latest.json``), if any."""
    latest = monitoring_dir(project.settings()) / "latest.json"
    if not latest.is_file():
        return None
    return MonitoringSummary.model_validate_json(latest.read_text(encoding="utf-8"))


@sensor(
    name="retrain_on_alarm",
    job=training_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Starts a training run when the newest monitoring report recommends retraining.",
)
def retrain_on_alarm(
    context: SensorEvaluationContext, project: ProjectResource
) -> SensorResult | SkipReason:
    """One training run per report that recommends retraining (never on broken inputs)."""
    summary = newest_summary(project)
    if summary is None:
        return SkipReason("no monitoring report yet (`make monitor`, or the scoring job)")
    # Each report is written once under its own name: the name identifies the event.
    report = summary.reports.get("json", summary.generated_at)
    if report == context.cursor:
        return SkipReason(f"no new monitoring report since {report}")
    if not summary.retrain_recommended:
        return SensorResult(skip_reason=f"{report}: {summary.status}, no retraining", cursor=report)
    reasons = [
        reason
        for reason, found in (
            ("drift", summary.drift_detected),
            ("estimated_performance", summary.estimated_breach),
            ("performance", summary.performance_breach),
        )
        if found
    ]
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=report,
                tags={"trigger": "monitoring", "reasons": ",".join(reasons), "report": report},
            )
        ],
        cursor=report,
    )


@sensor(
    name="evaluate_new_versions",
    job=version_evaluation_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Evaluates each model version that appears in the registry.",
)
def evaluate_new_versions(
    context: SensorEvaluationContext, project: ProjectResource
) -> SensorResult | SkipReason:
    """One evaluation run per new version; the cursor is the highest version seen."""
    from ..registry import ModelUnavailableError, registered_versions

    settings = project.settings()
    try:
        versions = registered_versions(settings)
    except ModelUnavailableError as error:
        return SkipReason(f"the registry cannot be read: {error}")
    seen = int(context.cursor) if context.cursor else 0
    new = [str(version) for version in versions if version > seen]
    if not new:
        return SkipReason(f"no version of {settings.model_name} after v{seen}")
    return SensorResult(
        run_requests=[
            RunRequest(partition_key=version, run_key=f"v{version}", tags={"trigger": "registry"})
            for version in new
        ],
        dynamic_partitions_requests=[model_versions.build_add_request(new)],
        cursor=str(max(versions)),
    )


JOBS = [training_job, scoring_job, loop_job, version_evaluation_job]
SCHEDULES = [nightly_scoring, weekly_retraining]
SENSORS = [retrain_on_alarm, evaluate_new_versions]
