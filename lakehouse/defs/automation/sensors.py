"""Sensors: newly landed files become ingestion runs; new data, drift or decay become retraining; the
automation conditions are evaluated. Each is built by a small factory and decides in a plain function."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from lakehouse import catalog
from lakehouse.catalog import FLIGHT_FEATURES, MONITORING
from lakehouse.defs.automation.schedules import materialized_days
from lakehouse.lib.files import sha256
from lakehouse.ml.lineage import ModelLineage
from lakehouse.partitions import daily_partitions
from lakehouse.quality import FAILED_CHECKS
from lakehouse.reads import loaded_checksums
from lakehouse.resources import LakeStorage, MlflowTracking, SourceSystems
from lakehouse.settings import Settings, current


def landed_day(path: str) -> date | None:
    """The day a landing file is for, from its name (``flights/2013-01-01.csv``); None if not a date."""
    stem = path.rsplit("/", 1)[-1].split(".", 1)[0]
    try:
        return date.fromisoformat(stem)
    except ValueError:
        return None


def contiguous_ranges(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days grouped into runs of consecutive days, as (first, last) pairs."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def not_loaded(lake: LakeStorage, candidates: dict[tuple[str, date], str]) -> set[date]:
    """The days among ``candidates`` whose landed file bronze does not hold already, by checksum: after a
    `make demo`, or with a lost cursor, files already ingested start nothing."""
    changed = set()
    for path in {path for path, _ in candidates}:
        days = [day for table, day in candidates if table == path]
        loaded = loaded_checksums(lake, catalog.table(path), days)
        changed |= {day for day in days if loaded.get(day) != candidates[(path, day)]}
    return changed


def build_landing_sensor(
    partitions: dg.DailyPartitionsDefinition, minimum_interval_seconds: int = 30
) -> dg.SensorDefinition:
    bronze_tables = [table for table in catalog.layer("bronze") if table.feed is not None]

    @dg.sensor(
        name="landing_sensor",
        job_name="ingest_job",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests an ingestion run (bronze and silver) for every newly landed or re-delivered "
        "day whose content bronze does not hold yet. Run keys come from the files' checksums: the same "
        "content is ingested once, a corrected one again.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, sources: SourceSystems, lake: LakeStorage):
        landing = sources.landing
        seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
        first, last = (
            date.fromisoformat(k)
            for k in (partitions.get_first_partition_key(), partitions.get_last_partition_key())
        )
        current: dict[str, list] = {}
        candidates: dict[tuple[str, date], str] = {}  # (bronze table, day): the landed file's digest
        ignored = []
        for table in bronze_tables:
            for file in landing.list(table.feed.folder, table.feed.suffix):
                day = landed_day(file.path)
                if day is None or not first <= day <= last:
                    ignored.append(file.path)
                    continue
                stamp = [file.size, file.modified_at.isoformat()]
                known = seen.get(file.path)
                if known and known[:2] == stamp:
                    current[file.path] = known
                    continue
                digest = sha256(landing.read_bytes(file.path))
                current[file.path] = [*stamp, digest]
                if not known or known[2] != digest:
                    candidates[(table.path, day)] = digest
        changed = not_loaded(lake, candidates)
        if ignored:
            context.log.warning(
                f"ignored {len(ignored)} landing file(s) outside the partitions: {ignored[:5]}"
            )
        requests = []
        for start, end in contiguous_ranges(sorted(changed)):
            digests = sorted(
                v[2]
                for p, v in current.items()
                if start <= (landed_day(p) or start) <= end and landed_day(p) is not None
            )
            content = sha256("".join(digests).encode())[:16]
            tags = {
                "dagster/asset_partition_range_start": start.isoformat(),
                "dagster/asset_partition_range_end": end.isoformat(),
                "lakehouse/landed_days": str((end - start).days + 1),
            }
            requests.append(dg.RunRequest(run_key=f"ingest-{start}-{end}-{content}", tags=tags))
        if not requests:
            return dg.SensorResult(
                skip_reason=f"no new or changed files among {len(current)} landed", cursor=json.dumps(current)
            )
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(current))

    return landing_sensor


@dataclass(frozen=True)
class RetrainDecision:
    request: bool
    reason: str


def retrain_decision(
    champion_last_day: date | None,
    feature_days: set[date],
    failed_monitoring: list[str],
    failed_blocking: list[str],
    last_request: datetime | None,
    now: datetime,
    min_new_days: int,
    cooldown: timedelta,
    first_model_days: int,
) -> RetrainDecision:
    """Whether to retrain now, and why (or why not)."""
    if failed_blocking:
        return RetrainDecision(
            False, f"{FLIGHT_FEATURES.path} failed blocking check(s) {', '.join(failed_blocking)}"
        )
    if last_request and now - last_request < cooldown:
        return RetrainDecision(
            False, f"cooling down until {(last_request + cooldown).isoformat(timespec='minutes')}"
        )
    if champion_last_day is None:
        if len(feature_days) >= first_model_days:
            return RetrainDecision(True, f"no champion yet and {len(feature_days)} days of features")
        return RetrainDecision(
            False, f"no champion yet; {len(feature_days)} of {first_model_days} days of features"
        )
    new_days = sorted(d for d in feature_days if d > champion_last_day)
    if not new_days:
        # The same days would make the same model: training could only reuse the champion.
        return RetrainDecision(
            False, f"no day of features after the champion's last ({champion_last_day}): nothing new to learn"
        )
    if failed_monitoring:
        return RetrainDecision(True, f"monitoring check(s) failed: {', '.join(failed_monitoring)}")
    if len(new_days) >= min_new_days:
        return RetrainDecision(
            True, f"{len(new_days)} new day(s) of labelled features since {champion_last_day}"
        )
    return RetrainDecision(
        False, f"{len(new_days)} of {min_new_days} new day(s) since {champion_last_day}; no drift or decay"
    )


def failed_checks(instance: dg.DagsterInstance, key: dg.AssetKey) -> list[str]:
    """The checks the latest materialization of ``key`` recorded as failed (``quality.FAILED_CHECKS``)."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    if materialization is None or FAILED_CHECKS not in materialization.metadata:
        return []
    return list(materialization.metadata[FAILED_CHECKS].value)


def build_retrain_sensor(
    partitions: dg.DailyPartitionsDefinition,
    min_new_days: int = 7,
    cooldown: timedelta = timedelta(hours=6),
    first_model_days: int = 42,
    minimum_interval_seconds: int = 60,
) -> dg.SensorDefinition:
    @dg.sensor(
        name="retrain_sensor",
        job_name="retrain_job",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests training and the champion gate when {min_new_days}+ new days of features have "
        f"landed since the champion's data, or a drift or decay check failed; at most once per {cooldown}, "
        "never on features whose blocking checks failed.",
    )
    def retrain_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowTracking):
        instance = context.instance
        champion = mlflow.champion()
        champion_last_day = ModelLineage.from_tags(champion.tags).window.holdout_end if champion else None
        feature_days = {
            date.fromisoformat(day) for day in materialized_days(instance, FLIGHT_FEATURES.key, partitions)
        }
        last_request = datetime.fromisoformat(context.cursor) if context.cursor else None
        now = datetime.now(UTC)
        decision = retrain_decision(
            champion_last_day,
            feature_days,
            failed_checks(instance, MONITORING.key),
            [c for c in failed_checks(instance, FLIGHT_FEATURES.key) if c in FLIGHT_FEATURES.blocking_checks],
            last_request,
            now,
            min_new_days,
            cooldown,
            first_model_days,
        )
        if not decision.request:
            return dg.SkipReason(decision.reason)
        newest = max(feature_days).isoformat()
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"retrain-{champion.version if champion else 'none'}-{newest}-{now:%Y%m%dT%H%M}",
                    tags={"lakehouse/retrain_reason": decision.reason},
                )
            ],
            cursor=now.isoformat(),
        )

    return retrain_sensor


def sensors_for(settings: Settings) -> list[dg.SensorDefinition]:
    """The sensors of a deployment, tuned by its settings."""
    partitions = daily_partitions(settings)
    return [
        build_landing_sensor(partitions, settings.landing_interval_seconds),
        build_retrain_sensor(
            partitions,
            min_new_days=settings.retrain_min_new_days,
            cooldown=timedelta(hours=settings.retrain_cooldown_hours),
        ),
        dg.AutomationConditionSensorDefinition(
            "automation_sensor",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=30,
        ),
    ]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(sensors=sensors_for(current()))
