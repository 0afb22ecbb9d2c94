"""The lake on S3, for real: moto's S3 server in its own process on loopback, and only configuration
changed (``LAKEHOUSE_LANDING_URI``, ``LAKEHOUSE_LAKE_URI``, ``LAKEHOUSE_MLFLOW_ARTIFACTS``,
``AWS_ENDPOINT_URL`` and the usual credential variables). The in-process ``ThreadedMotoServer`` is not
used: it hangs delta-rs.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from lakehouse import catalog
from lakehouse.definitions import resources_from_env
from lakehouse.ml.lineage import VacuumRefused, safe_vacuum
from lakehouse.ml.training import reproduce
from lakehouse.sources.replay import replay
from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, ML_ASSETS, materialize
from lakehouse_tests.servers import free_port, wait_until_answers

FIRST, LAST = date(2013, 1, 1), date(2013, 1, 5)
BIN = Path(sys.executable).parent
BUCKET = "lakehouse"
REBUILD = {"ops": {"silver__flights": {"config": {"rebuild": True}}}}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free loopback port, in its own process, stopped after the module."""
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{endpoint}/moto-api/", server, "moto's S3 server", 30)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def on_s3(s3_server, tmp_path_factory):
    """The environment of a deployment whose lake, landing zone and MLflow artifacts are on S3 (the
    warehouse, the operational database and MLflow's tracking store stay local), with five real days
    landed there, set in this process for the module."""
    import boto3

    local = tmp_path_factory.mktemp("s3-local")
    env = {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "lakehouse-test",
        "AWS_SECRET_ACCESS_KEY": "lakehouse-test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",  # delta-rs: the server on loopback speaks plain HTTP
        "LAKEHOUSE_DATA_DIR": str(local),
        "LAKEHOUSE_LANDING_URI": f"s3://{BUCKET}/landing",
        "LAKEHOUSE_LAKE_URI": f"s3://{BUCKET}/lake",
        "LAKEHOUSE_MLFLOW_ARTIFACTS": f"s3://{BUCKET}/mlflow",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        (local / "sources").mkdir()
        replay(env["LAKEHOUSE_LANDING_URI"], local / "sources" / "operational.sqlite", FIRST, LAST)
        yield resources_from_env(dict(os.environ))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def built(on_s3):
    """Every layer materialized on S3, the model trained, gated and scoring."""
    resources = on_s3
    assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, FIRST, LAST).success
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            ML_ASSETS[:2],
            resources=resources,
            instance=instance,
            run_config={"ops": {"ml__delay_model": {"config": {"holdout_days": 1}}}},
        ).success
        assert materialize(ML_ASSETS[2:], resources, FIRST, LAST, instance=instance).success
    return resources


def test_the_whole_path_runs_on_s3(built):
    lake = built["lake"]
    assert lake.root == f"s3://{BUCKET}/lake"
    assert lake.storage_options == {"aws_conditional_put": "etag"}
    flights = lake.scan(catalog.SILVER_FLIGHTS.path).collect()
    assert flights.height == 4_334 and flights["flight_date"].n_unique() == 5
    assert lake.scan(catalog.PREDICTIONS.path).collect().height == flights.height
    assert lake.scan(catalog.PROMOTIONS.path).collect()["promoted"].to_list() == [True]
    champion = built["mlflow"].champion()
    run = built["mlflow"].client().get_run(champion.run_id)
    assert run.info.artifact_uri.startswith(f"s3://{BUCKET}/mlflow/")
    artifacts = {a.path for a in built["mlflow"].client().list_artifacts(champion.run_id, "plots")}
    assert artifacts == {"plots/roc.png", "plots/calibration.png", "plots/importance.png"}


def test_time_travel_vacuum_protection_and_reproduce_work_on_s3(built):
    lake, tracking = built["lake"], built["mlflow"]
    trained_on = lake.version(catalog.SILVER_FLIGHTS.path)
    assert materialize(INGEST_ASSETS, built, FIRST, LAST, run_config=REBUILD).success
    assert lake.version(catalog.SILVER_FLIGHTS.path) > trained_on
    before = lake.scan(catalog.SILVER_FLIGHTS.path, version=trained_on).collect()
    assert before.height == 4_334
    with pytest.raises(VacuumRefused, match="silver/flights"):
        safe_vacuum(lake, tracking, catalog.SILVER_FLIGHTS.path, retention_hours=0, dry_run=True)
    result = reproduce(tracking, lake, "1")
    assert result.identical, (result.hash_recorded, result.hash_rebuilt, result.max_difference)


def test_four_concurrent_writers_of_one_table_lose_no_commit(on_s3):
    """Conditional puts: four writers of different days commit to one table at once; every commit lands."""
    lake = on_s3["lake"]
    table = "scratch/concurrent"
    days = [date(2013, 2, day) for day in range(1, 5)]

    def write(day: date):
        frame = pl.DataFrame({"day": [day] * 1000, "value": list(range(1000))})
        return lake.replace_dates(table, frame, "day", [day], f"writer-{day}")

    lake.replace_dates(
        table, pl.DataFrame({"day": [date(2013, 1, 31)], "value": [0]}), "day", [date(2013, 1, 31)], "w0"
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        versions = sorted(write.version for write in pool.map(write, days))
    assert versions == [1, 2, 3, 4]
    stored = lake.scan(table).collect()
    assert stored.group_by("day").len().sort("day")["len"].to_list() == [1, 1000, 1000, 1000, 1000]
    writers = [entry.get("dagster_run_id") for entry in lake.table(table).history()]
    assert sorted(w for w in writers if w and w.startswith("writer-")) == [f"writer-{d}" for d in days]
