"""The one code location loads, its asset graph resolves, and its shape follows the design."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from lakehouse.definitions import defs, resources_from_env
from lakehouse.resources import LakeStorage

PROJECT = Path(__file__).resolve().parent.parent


def test_the_asset_graph_resolves_with_every_layer():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    for table in ("flights", "weather", "planes", "airports", "airlines"):
        assert {f"sources/{table}", f"bronze/{table}", f"silver/{table}"} <= keys
    assert "silver/quarantine" in keys
    for node in graph.asset_nodes:
        layer = node.key.path[0]
        assert node.group_name == layer, node.key
        assert node.description, f"{node.key.to_user_string()} has no description"
    assert defs.resolve_job_def("lakehouse_job") and defs.resolve_job_def("ingest_job")


def test_every_check_has_a_description():
    for spec in defs.resolve_asset_graph().asset_check_keys:
        assert defs.resolve_asset_graph().get_check_spec(spec).description, spec


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
