"""Backfills that fan out: with ``LAKEHOUSE_BACKFILL_DAYS`` set, Dagster's daemon splits a backfill into runs
of at most that many days and the run queue starts them side by side; what they build equals what one run
over the whole range builds.

Real days, a real Dagster webserver and daemon (the run queue) on loopback, the backfill submitted by
``lakehouse backfill``'s client through the webserver's GraphQL API.
"""

import os
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from lakehouse import catalog
from lakehouse.backfill import BACKFILL_TAG, BackfillError, Dagster, Progress, days, job_assets
from lakehouse.cli import main as cli
from lakehouse.definitions import backfill_policy, deployed
from lakehouse.settings import load_settings
from lakehouse.sources.replay import replay
from lakehouse_tests.conftest import resources_at
from lakehouse_tests.pipeline import (
    GOLD_ASSETS,
    INGEST_ASSETS,
    LINEAGE_COLUMNS,
    assets_of,
    fingerprint,
    materialize,
)
from lakehouse_tests.servers import dagster_daemon, dagster_webserver, free_port

PROJECT = Path(__file__).resolve().parents[2]
FIRST, LAST = date(2013, 3, 4), date(2013, 3, 7)
RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fanout")
    replay(str(root / "landing"), root / "sources" / "operational.sqlite", FIRST, LAST)
    return root


def copy_of(landed: Path, to: Path) -> Path:
    shutil.copytree(landed, to)
    return to


@pytest.mark.slow
def test_a_fanned_out_backfill_equals_one_run_over_the_range(landed: Path, tmp_path: Path):
    # The daily assets fan out; the reference tables (never split) are built beforehand on both sides, so
    # the daemon can put each chunk's bronze and silver in one run (two waves of runs instead of four).
    reference = [a for a in INGEST_ASSETS if a.partitions_def is None]
    daily = [a for a in INGEST_ASSETS + GOLD_ASSETS if a.partitions_def is not None]
    at_once = resources_at(copy_of(landed, tmp_path / "at_once"))
    assert materialize(reference + daily, at_once, FIRST, LAST).success

    data, home = copy_of(landed, tmp_path / "fanned"), tmp_path / "dagster_home"
    assert dg.materialize(reference, resources=resources_at(data)).success
    home.mkdir()
    instance_yaml = (PROJECT / "lakehouse" / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(
        instance_yaml.replace("max_concurrent_runs: 4", "max_concurrent_runs: 2")
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
        "DAGSTER_HOME": str(home),
        "LAKEHOUSE_DATA_DIR": str(data),
        "LAKEHOUSE_BACKFILL_DAYS": "2",
    }
    targets = {key: True for key, is_daily in job_assets("gold_job").items() if is_daily}
    assert set(targets) == {asset.key for asset in daily}
    with dagster_webserver(PROJECT, env) as url:
        dagster = Dagster(url)
        # Stopped before the daemon starts, so that the backfill alone writes these days.
        assert "landing_sensor" in dagster.stop_automation()
        with dagster_daemon(PROJECT, env):
            backfill_id = dagster.submit("gold_job", targets, days(FIRST, LAST))
            final = dagster.follow(backfill_id, lambda _: None, timeout_seconds=600)
    assert final.succeeded, final.line()

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}))
    for table in (catalog.BRONZE_FLIGHTS, catalog.FLIGHT_FEATURES):
        chunks = [run for run in runs if table.key in (run.asset_selection or set())]
        assert sorted((run.tags[RANGE[0]], run.tags[RANGE[1]]) for run in chunks) == [
            ("2013-03-04", "2013-03-05"),
            ("2013-03-06", "2013-03-07"),
        ], table.path
    assert fingerprint(resources_at(data), ignore=LINEAGE_COLUMNS) == fingerprint(
        at_once, ignore=LINEAGE_COLUMNS
    )


def test_the_setting_gives_daily_assets_runs_of_k_days_and_leaves_the_rest_one_run():
    assert backfill_policy(load_settings({})) == dg.BackfillPolicy.single_run()
    fanned = load_settings({"LAKEHOUSE_BACKFILL_DAYS": "7"})
    assert backfill_policy(fanned) == dg.BackfillPolicy.multi_run(7)
    silver_flights, features, planes = assets_of(
        catalog.SILVER_FLIGHTS, catalog.FLIGHT_FEATURES, catalog.SILVER_PLANES
    )
    assert deployed(silver_flights, fanned).backfill_policy == dg.BackfillPolicy.multi_run(7)
    assert deployed(features, fanned).backfill_policy == dg.BackfillPolicy.multi_run(7)
    assert deployed(planes, fanned).backfill_policy == dg.BackfillPolicy.single_run()
    [kept], [original] = deployed(features, fanned).specs, features.specs  # the automation condition kept
    assert kept.automation_condition is not None
    assert kept.automation_condition == original.automation_condition


@pytest.mark.parametrize("value", ["-1", "a week", "2.5"])
def test_a_bad_backfill_setting_is_named(value: str):
    with pytest.raises(ValueError, match="LAKEHOUSE_BACKFILL_DAYS"):
        load_settings({"LAKEHOUSE_BACKFILL_DAYS": value})


def test_a_backfill_of_an_unknown_job_or_a_reversed_range_is_refused():
    with pytest.raises(ValueError, match=r"no asset job 'gold'.*gold_job"):
        job_assets("gold")
    with pytest.raises(ValueError, match="before"):
        days(LAST, FIRST)


def test_a_backfill_without_a_webserver_says_where_it_looked():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackfillError, match=f"no Dagster webserver answers at {url}"):
        Dagster(url, timeout=5).submit("gold_job", job_assets("gold_job"), days(FIRST, LAST))
    command = ["backfill", "gold_job", "--from", str(FIRST), "--through", str(LAST), "--url", url]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1 and f"no Dagster webserver answers at {url}" in result.output
    reversed_range = CliRunner().invoke(
        cli, ["backfill", "gold_job", "--from", str(LAST), "--through", str(FIRST)]
    )
    assert reversed_range.exit_code == 2 and "is before --from" in reversed_range.output


def test_a_backfill_succeeds_only_when_it_completed_and_every_run_succeeded():
    assert Progress("COMPLETED_SUCCESS", {"SUCCESS": 8}).succeeded
    failed = Progress("COMPLETED_FAILED", {"SUCCESS": 14, "FAILURE": 2})
    assert failed.finished and not failed.succeeded
    assert failed.line() == "completed_failed: 16 run(s), 2 failure, 14 success"
    assert not Progress("REQUESTED", {"SUCCESS": 3, "STARTED": 1}).finished
    assert not Progress("COMPLETED", {"SUCCESS": 3, "CANCELED": 1}).succeeded
