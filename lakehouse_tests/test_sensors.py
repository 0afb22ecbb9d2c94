"""Sensors and automation on a real Dagster instance, over real landed files."""

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from lakehouse import catalog
from lakehouse.definitions import with_policy
from lakehouse.defs.automation.failures import record_failed_runs
from lakehouse.defs.automation.sensors import (
    build_landing_sensor,
    build_retrain_sensor,
    contiguous_ranges,
    retrain_decision,
)
from lakehouse.partitions import daily_partitions
from lakehouse.settings import load_settings
from lakehouse.sources.replay import flights_path, replay
from lakehouse_tests.conftest import resources_at
from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, assets_of, definitions, materialize

PARTITIONS = daily_partitions()

JAN1 = date(2013, 1, 1)


def evaluate(sensor: dg.SensorDefinition, instance, resources, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    return sensor(context)


def test_contiguous_days_become_ranges():
    days = [date(2013, 1, 2), date(2013, 1, 1), date(2013, 2, 12), date(2013, 1, 3), date(2013, 11, 3)]
    assert contiguous_ranges(days) == [
        (date(2013, 1, 1), date(2013, 1, 3)),
        (date(2013, 2, 12), date(2013, 2, 12)),
        (date(2013, 11, 3), date(2013, 11, 3)),
    ]


def test_landing_sensor_cursor_cases(landed: Path, resources):
    sensor = build_landing_sensor(PARTITIONS)
    with dg.instance_for_test() as instance:
        first = evaluate(sensor, instance, resources)
        ranges = sorted(
            (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in first.run_requests
        )
        assert ranges == [
            ("2013-01-01", "2013-01-02"),
            ("2013-02-12", "2013-02-12"),
            ("2013-11-03", "2013-11-03"),
        ]

        # Nothing new: nothing requested, and the reason is given.
        quiet = evaluate(sensor, instance, resources, first.cursor)
        assert not quiet.run_requests and "no new or changed files among 8" in quiet.skip_reason.skip_message

        # The same content delivered again (a new modification time): still nothing.
        file = landed / "landing" / flights_path(JAN1)
        content = file.read_bytes()
        file.write_bytes(content)
        os.utime(file, (file.stat().st_atime, file.stat().st_mtime + 60))
        again = evaluate(sensor, instance, resources, quiet.cursor)
        assert not again.run_requests

        # A corrected delivery: that day alone, under a new run key.
        file.write_bytes(content.replace(b",UA,1545,", b",UA,1546,", 1))
        corrected = evaluate(sensor, instance, resources, again.cursor)
        [request] = corrected.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2013-01-01"
        assert request.tags["dagster/asset_partition_range_end"] == "2013-01-01"
        assert request.run_key not in {r.run_key for r in first.run_requests}


def test_landing_sensor_run_keys_depend_only_on_content(landed: Path, resources):
    sensor = build_landing_sensor(PARTITIONS)
    with dg.instance_for_test() as instance:
        keys = {r.run_key for r in evaluate(sensor, instance, resources).run_requests}
        # A lost cursor asks again with the same run keys, which Dagster will not launch twice.
        assert {r.run_key for r in evaluate(sensor, instance, resources).run_requests} == keys


NOW = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = {date(2013, 1, 1) + timedelta(days=i) for i in range(60)}


@pytest.mark.parametrize(
    ("kwargs", "request_", "reason"),
    [
        ({"champion_last_day": None, "feature_days": set(list(DAYS)[:10])}, False, "10 of 42 days"),
        ({"champion_last_day": None}, True, "no champion yet and 60 days"),
        ({"champion_last_day": date(2013, 2, 25)}, False, "4 of 7 new day(s)"),
        ({"champion_last_day": date(2013, 2, 20)}, True, "9 new day(s)"),
        (
            {"champion_last_day": date(2013, 2, 28), "failed_monitoring": ["feature_drift"]},
            True,
            "feature_drift",
        ),
        (
            {"champion_last_day": date(2013, 3, 1), "failed_monitoring": ["feature_drift"]},
            False,
            "nothing new to learn",
        ),
        ({"champion_last_day": date(2013, 2, 1), "failed_blocking": ["label_rate"]}, False, "label_rate"),
        (
            {"champion_last_day": date(2013, 2, 1), "last_request": NOW - timedelta(hours=1)},
            False,
            "cooling down",
        ),
    ],
)
def test_retrain_decisions(kwargs, request_, reason):
    arguments = {
        "feature_days": DAYS,
        "failed_monitoring": [],
        "failed_blocking": [],
        "last_request": None,
        "now": NOW,
        "min_new_days": 7,
        "cooldown": timedelta(hours=6),
        "first_model_days": 42,
    } | kwargs
    decision = retrain_decision(**arguments)
    assert decision.request is request_ and reason in decision.reason


def test_retrain_sensor_says_why_it_waits(resources):
    with dg.instance_for_test() as instance:
        result = evaluate(build_retrain_sensor(PARTITIONS), instance, {"mlflow": resources["mlflow"]})
        assert isinstance(result, dg.SkipReason)
        assert "no champion yet; 0 of 42 days" in result.skip_message


def test_automation_rebuilds_gold_for_a_newly_ingested_day(resources):
    with dg.instance_for_test() as instance:
        baseline = dg.evaluate_automation_conditions(defs=definitions(), instance=instance)
        assert baseline.total_requested == 0
        assert materialize(INGEST_ASSETS, resources, JAN1, instance=instance).success
        after = dg.evaluate_automation_conditions(
            defs=definitions(), instance=instance, cursor=baseline.cursor
        )
        requested = {
            (key.to_user_string(), tuple(sorted(after.get_requested_partitions(key))))
            for key in (
                dg.AssetKey(["gold", "flight_features"]),
                dg.AssetKey(["gold", "daily_airport_performance"]),
            )
        }
        assert requested == {
            ("gold/flight_features", ("2013-01-01",)),
            ("gold/daily_airport_performance", ("2013-01-01",)),
        }
        # Training is the retrain sensor's decision, never automation's.
        assert not after.get_requested_partitions(dg.AssetKey(["ml", "delay_model"]))


def test_days_landing_one_by_one_retrain_after_enough_and_not_before(tmp_path: Path):
    root = tmp_path / "data"
    resources = resources_at(root)
    landing_sensor = build_landing_sensor(PARTITIONS)
    retrain_sensor = build_retrain_sensor(PARTITIONS, first_model_days=3)
    cursor = None
    with dg.instance_for_test() as instance:
        for offset in range(3):
            day = JAN1 + timedelta(days=offset)
            replay(str(root / "landing"), root / "sources" / "operational.sqlite", day, day)
            result = evaluate(landing_sensor, instance, resources, cursor)
            cursor = result.cursor
            [request] = result.run_requests
            assert request.tags["dagster/asset_partition_range_start"] == day.isoformat()
            assert materialize(INGEST_ASSETS + GOLD_ASSETS[:1], resources, day, instance=instance).success
            decision = evaluate(retrain_sensor, instance, {"mlflow": resources["mlflow"]})
            if offset < 2:
                assert (
                    isinstance(decision, dg.SkipReason) and f"{offset + 1} of 3 days" in decision.skip_message
                )
            else:
                [retrain] = decision.run_requests
                assert "no champion yet and 3 days" in retrain.tags["lakehouse/retrain_reason"]
        # The same file delivered again starts nothing.
        replay(str(root / "landing"), root / "sources" / "operational.sqlite", JAN1, JAN1, redeliver=[JAN1])
        assert not evaluate(landing_sensor, instance, resources, cursor).run_requests


def test_monitoring_waits_for_a_champion(resources):
    with dg.instance_for_test() as instance:
        baseline = dg.evaluate_automation_conditions(defs=definitions(), instance=instance)
        assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, JAN1, instance=instance).success
        after = dg.evaluate_automation_conditions(
            defs=definitions(), instance=instance, cursor=baseline.cursor
        )
        assert not after.get_requested_partitions(dg.AssetKey(["ml", "monitoring"]))


def test_a_new_day_rebuilds_that_day_not_the_history(landed: Path, resources):
    """Each ingestion refreshes the reference tables; the days already built must not be rebuilt for it."""
    with dg.instance_for_test() as instance:
        assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, JAN1, instance=instance).success
        baseline = dg.evaluate_automation_conditions(defs=definitions(), instance=instance)
        assert materialize(INGEST_ASSETS, resources, date(2013, 1, 2), instance=instance).success
        after = dg.evaluate_automation_conditions(
            defs=definitions(), instance=instance, cursor=baseline.cursor
        )
        for asset in (
            ["silver", "flights"],
            ["gold", "flight_features"],
            ["gold", "daily_airport_performance"],
        ):
            assert "2013-01-01" not in after.get_requested_partitions(dg.AssetKey(asset)), asset
        assert after.get_requested_partitions(dg.AssetKey(["gold", "flight_features"])) == {"2013-01-02"}


def test_a_failed_run_is_recorded_with_its_error(tmp_path: Path):
    resources = resources_at(tmp_path / "nothing_landed")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            assets_of(catalog.BRONZE_PLANES), resources=resources, instance=instance, raise_on_error=False
        )
        assert not result.success
        [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
        context = dg.build_run_status_sensor_context(
            sensor_name="record_failed_runs",
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
        ).for_run_failure()
        record_failed_runs(context)
        [record] = instance.fetch_observations(catalog.FAILED_RUNS.key, limit=5).records
        observation = record.asset_observation
        assert observation.metadata["run_id"].value == result.run_id
        assert observation.metadata["failed_steps"].value == ["bronze__planes"]
        assert "operational.sqlite does not exist" in observation.metadata["error"].value


@pytest.mark.slow
def test_after_a_demo_nothing_starts(tmp_path: Path):
    """A small `make demo` (five days landed, every asset materialized in one run), then two ticks of each
    sensor, the automation and the daily schedule: not one run requested, each saying why."""
    root = tmp_path / "data"
    replay(str(root / "landing"), root / "sources" / "operational.sqlite", JAN1, date(2013, 1, 5))
    defs = with_policy(definitions(), load_settings({"LAKEHOUSE_DATA_DIR": str(root)}))
    resources = resources_at(root)
    tags = {
        "dagster/asset_partition_range_start": "2013-01-01",
        "dagster/asset_partition_range_end": "2013-01-05",
    }
    with dg.instance_for_test() as instance:
        demo = defs.resolve_job_def("lakehouse_job").execute_in_process(
            instance=instance,
            tags=tags,
            run_config={"ops": {"ml__delay_model": {"config": {"holdout_days": 1}}}},
        )
        assert demo.success
        runs = len(instance.get_runs())
        for name in ("landing_sensor", "retrain_sensor"):
            cursor = None
            for _ in range(2):
                context = dg.build_sensor_context(
                    instance=instance, cursor=cursor, resources=resources, definitions=defs
                )
                result = defs.resolve_sensor_def(name)(context)
                assert not getattr(result, "run_requests", None), name
                cursor = getattr(result, "cursor", cursor)
        automation = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=automation.cursor)
        assert automation.total_requested == again.total_requested == 0
        scoring = defs.resolve_schedule_def("daily_scoring")(dg.build_schedule_context(instance=instance))
        assert isinstance(scoring, dg.SkipReason) and "is scored" in scoring.skip_message
        assert len(instance.get_runs()) == runs
