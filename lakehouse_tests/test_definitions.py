"""The one code location loads, its asset graph resolves, and its shape follows the design."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from lakehouse import catalog
from lakehouse.definitions import resources_from_env
from lakehouse.resources import LakeStorage
from lakehouse_tests.pipeline import definitions

PROJECT = Path(__file__).resolve().parent.parent


def test_the_asset_graph_is_the_catalog():
    graph = definitions().resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {table.key for table in catalog.TABLES}
    for table in catalog.TABLES:
        node = graph.get(table.key)
        assert node.group_name == table.layer, table.path
        assert node.description == table.description, table.path
        assert {key.name for key in node.check_keys} == {c.name for c in table.checks}, table.path
        blocking = {key.name for key in node.check_keys if graph.get_check_spec(key).blocking}
        assert blocking == set(table.blocking_checks), table.path
    jobs = ("lakehouse_job", "ingest_job", "gold_job", "train_job", "retrain_job", "score_job", "online_job",
            "skew_job")  # fmt: skip
    for job in jobs:
        assert definitions().resolve_job_def(job)
    # The batch job needs no online store: the live path's assets have jobs of their own.
    batch = definitions().resolve_job_def("lakehouse_job").asset_layer.selected_asset_keys
    assert catalog.ONLINE_FEATURE_STORE.key not in batch and catalog.SERVING_SKEW.key not in batch


def test_every_check_has_a_description():
    graph = definitions().resolve_asset_graph()
    for key in graph.asset_check_keys:
        assert graph.get_check_spec(key).description, key


def test_bronze_feeds_are_watched_for_freshness():
    graph = definitions().resolve_asset_graph()
    for table in catalog.layer("bronze"):
        policy = graph.get(table.key).freshness_policy
        assert (policy is not None) == table.daily, table.path


@pytest.mark.slow
def test_importing_the_project_reads_no_setting():
    """Every module imports with a broken environment: settings are read when definitions are built."""
    modules = [
        f"lakehouse.{path.relative_to(PROJECT / 'lakehouse').with_suffix('').as_posix().replace('/', '.')}"
        for path in (PROJECT / "lakehouse").rglob("*.py")
        if path.name != "__init__.py"
    ]
    script = (
        "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')"
    )
    env = {**os.environ, "LAKEHOUSE_START_DATE": "never", "LAKEHOUSE_NOT_A_SETTING": "x"}
    imported = subprocess.run(
        [sys.executable, "-c", script, *modules], env=env, capture_output=True, text=True, timeout=300
    )
    assert imported.returncode == 0 and imported.stdout.strip() == "ok", imported.stderr[-2000:]
    built = subprocess.run(
        [sys.executable, "-c", "from lakehouse.definitions import defs; defs()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode != 0
    assert "LAKEHOUSE_START_DATE='never' is not a date" in built.stderr
    assert "LAKEHOUSE_NOT_A_SETTING is not a setting" in built.stderr


@pytest.mark.slow
def test_dg_check_and_list_defs_load_the_project(tmp_path: Path):
    """`dg check defs` and `dg list defs`, as a developer and CI run them."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    dg_cli = str(Path(sys.executable).parent / "dg")
    checked = subprocess.run(
        [dg_cli, "check", "defs"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    listed = subprocess.run(
        [dg_cli, "list", "defs", "--json"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    for table in catalog.TABLES:
        assert table.key.to_user_string() in listed.stdout, table.path


def test_resources_follow_the_environment(tmp_path: Path):
    built = resources_from_env(
        {
            "LAKEHOUSE_LAKE_URI": "s3://bucket/lake",
            "LAKEHOUSE_LANDING_URI": str(tmp_path),
            "AWS_PROFILE": "lakehouse",
        }
    )
    assert built["lake"].uri("silver/flights") == "s3://bucket/lake/silver/flights"
    assert built["sources"].landing_uri == str(tmp_path)


@pytest.mark.slow
def test_dagster_job_execute_runs_the_ingest_job(landed: Path, tmp_path: Path):
    """The command CI and `make demo` use, in a subprocess, against the landed test days."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LAKEHOUSE_LANDING_URI": str(landed / "landing"),
        "LAKEHOUSE_SOURCE_DATABASE": str(landed / "sources" / "operational.sqlite"),
        "LAKEHOUSE_LAKE_URI": str(landed / "lake"),
    }
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "execute",
            "-m",
            "lakehouse.definitions",
            "-j",
            "ingest_job",
            "-c",
            str(PROJECT / "lakehouse" / "run_config" / "quiet.yaml"),
            "--tags",
            '{"dagster/partition": "2013-01-01"}',
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lake = LakeStorage(root=str(landed / "lake"))
    flights = lake.scan("silver/flights").collect()
    assert flights.height == 842
    assert flights["flight_date"].unique().to_list() == [date(2013, 1, 1)]
    assert lake.scan("silver/quarantine").filter(pl.col("source_table") == "flights").collect().height == 0
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs()[0].status == dg.DagsterRunStatus.SUCCESS
