"""Schedules: daily batch scoring with the champion."""

import dagster as dg

from lakehouse.catalog import FLIGHT_FEATURES, PREDICTIONS
from lakehouse.partitions import daily_partitions


def materialized_days(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: dg.PartitionsDefinition
) -> set[str]:
    """The partitions of ``key`` that are materialized, by Dagster's public partition status."""
    statuses = instance.get_status_by_partition(key, partitions.get_partition_keys(), partitions)
    return {day for day, status in (statuses or {}).items() if status == dg.AssetPartitionStatus.MATERIALIZED}


def build_daily_scoring(partitions: dg.PartitionsDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_scoring",
        job_name="score_job",
        cron_schedule="0 5 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every morning, scores with the champion the newest day whose features exist and that "
        "has no predictions yet.",
    )
    def daily_scoring(context: dg.ScheduleEvaluationContext):
        featured = materialized_days(context.instance, FLIGHT_FEATURES.key, partitions)
        unscored = sorted(featured - materialized_days(context.instance, PREDICTIONS.key, partitions))
        if not unscored:
            return dg.SkipReason(f"every one of {len(featured)} featured day(s) is scored")
        day = unscored[-1]
        return dg.RunRequest(run_key=f"score-{day}", partition_key=day)

    return daily_scoring


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(schedules=[build_daily_scoring(daily_partitions())])
