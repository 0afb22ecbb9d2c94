"""Failed runs, recorded where a person sees them: an observation of ``ops/failed_runs`` per failure,
with its job, error and failed steps."""

import dagster as dg

from lakehouse.catalog import FAILED_RUNS

failed_runs = dg.AssetSpec(
    key=FAILED_RUNS.key, group_name=FAILED_RUNS.layer, description=FAILED_RUNS.description
)


def _root_cause(error) -> str:
    """The innermost error of a chain: Dagster wraps the exception the asset raised."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


@dg.run_failure_sensor(name="record_failed_runs", default_status=dg.DefaultSensorStatus.RUNNING)
def record_failed_runs(context: dg.RunFailureSensorContext) -> None:
    """Records each failed run as an observation of ops/failed_runs, with its error."""
    run = context.dagster_run
    step_failures = context.get_step_failure_events()
    steps = [event.step_key for event in step_failures]
    # The run's own message only names the steps; each step's failure carries the error itself.
    errors = [
        f"{event.step_key}: {_root_cause(event.step_failure_data.error)}"
        for event in step_failures
        if event.step_failure_data.error is not None
    ]
    error = "\n".join(errors) or context.failure_event.message or "unknown error"
    first = run.tags.get("dagster/asset_partition_range_start", run.tags.get("dagster/partition", "-"))
    last = run.tags.get("dagster/asset_partition_range_end", first)
    context.instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=FAILED_RUNS.key,
            description=f"{run.job_name} failed: {error}"[:500],
            metadata={
                "run_id": run.run_id,
                "job": run.job_name,
                "failed_steps": dg.MetadataValue.json(steps),
                "error": dg.MetadataValue.md(f"```\n{error[:4000]}\n```"),
                "partitions": f"{first}..{last}",
            },
        )
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[failed_runs], sensors=[record_failed_runs])
