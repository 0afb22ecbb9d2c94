"""Schedules: daily batch scoring with the champion."""

import dagster as dg

from lakehouse.jobs import score_job

FEATURES = dg.AssetKey(["gold", "flight_features"])
PREDICTIONS = dg.AssetKey(["ml", "predictions"])


@dg.schedule(
    name="daily_scoring",
    job=score_job,
    cron_schedule="0 5 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every morning, scores with the champion the newest day whose features exist and that has "
    "no predictions yet.",
)
def daily_scoring(context: dg.ScheduleEvaluationContext):
    featured = context.instance.get_materialized_partitions(FEATURES)
    unscored = sorted(featured - context.instance.get_materialized_partitions(PREDICTIONS))
    if not unscored:
        return dg.SkipReason(f"every one of {len(featured)} featured day(s) is scored")
    day = unscored[-1]
    return dg.RunRequest(run_key=f"score-{day}", partition_key=day)
