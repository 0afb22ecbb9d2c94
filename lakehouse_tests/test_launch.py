"""`lakehouse launch`: a job run from the terminal, recorded where the UI lists the runs of its job."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from lakehouse.launch import LOCATION_TAG, RANGE_END_TAG, RANGE_START_TAG, Launch, Watch, location_label

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_the_label_is_the_code_location_that_workspace_yaml_names():
    assert location_label() == "__repository__@lakehouse"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("load_from: []\n", "python_module"),
        (
            "load_from:\n  - python_module:\n      module_name: other.module\n",
            "module_name lakehouse.definitions",
        ),
        ("load_from:\n  - python_module:\n      module_name: lakehouse.definitions\n", "location_name"),
        ("{not yaml", "ParserError"),
    ],
)
def test_a_workspace_without_the_location_says_what_it_lacks(tmp_path: Path, text: str, problem: str):
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(text)
    with pytest.raises(ValueError, match=problem) as raised:
        location_label(workspace)
    assert str(workspace) in str(raised.value)


def test_a_range_is_tagged_as_a_single_run_backfill():
    tags = Launch("gold_job", date(2013, 1, 1), date(2013, 1, 31)).tags("id")
    assert tags[RANGE_START_TAG] == "2013-01-01" and tags[RANGE_END_TAG] == "2013-01-31"
    assert tags[LOCATION_TAG] == "__repository__@lakehouse"
    assert RANGE_START_TAG not in Launch("train_job").tags("id")


@pytest.mark.parametrize("start, through", [(date(2013, 2, 1), date(2013, 1, 1)), (date(2013, 1, 1), None)])
def test_a_range_must_have_both_ends_in_order(start, through):
    with pytest.raises(ValueError, match="--from ≤ --through"):
        Launch("gold_job", start, through).tags("id")


def test_the_terminal_log_level_wins_over_the_config_files(tmp_path: Path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "ops: {ml__delay_model: {config: {holdout_days: 3}}}\n"
        "loggers: {console: {config: {log_level: DEBUG}}}\n"
    )
    run_config = Launch("train_job", config_files=[str(config)], log_level="ERROR").run_config()
    assert run_config["ops"] == {"ml__delay_model": {"config": {"holdout_days": 3}}}
    assert run_config["loggers"] == {"console": {"config": {"log_level": "ERROR"}}}


def launch_ingest_of_new_years_day(env: dict, folder: Path) -> subprocess.CompletedProcess:
    """`lakehouse launch ingest_job` for 1 January 2013 in a subprocess, as `make demo` runs it."""
    return subprocess.run(
        [str(BIN / "lakehouse"), "launch", "ingest_job", "--from", "2013-01-01", "--through", "2013-01-01"],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_launched_run_is_labelled_with_its_location_and_reports_its_steps(landed: Path, tmp_path: Path):
    """In a subprocess, as `make demo` runs it: the run succeeds and carries what the job page filters on."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "LAKEHOUSE_DATA_DIR": str(landed)}
    completed = launch_ingest_of_new_years_day(env, tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.job_name == "ingest_job"
        assert run.tags[LOCATION_TAG] == "__repository__@lakehouse"
        assert (run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]) == ("2013-01-01", "2013-01-01")
        watch = Watch(run.tags["lakehouse/launch"])
        watch.poll(instance)
        assert watch.run_id == run.run_id
        assert watch.steps == watch.done > 0
        assert watch.line
    assert f"run {run.run_id} of ingest_job succeeded" in completed.stdout


@pytest.mark.slow
def test_a_failed_run_fails_the_command_and_names_the_run(tmp_path: Path):
    """No landed data: the ingest fails, and the command exits non-zero naming the run."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (tmp_path / "data" / "landing").mkdir(parents=True)
    (tmp_path / "data" / "sources").mkdir()
    (tmp_path / "data" / "sources" / "operational.sqlite").touch()
    env = {**os.environ, "DAGSTER_HOME": str(home), "LAKEHOUSE_DATA_DIR": str(tmp_path / "data")}
    completed = launch_ingest_of_new_years_day(env, tmp_path)
    assert completed.returncode == 1
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.FAILURE
    assert f"run {run.run_id} of ingest_job failed" in completed.stderr


def test_an_unordered_range_is_a_usage_error(tmp_path: Path):
    from click.testing import CliRunner

    from lakehouse.cli import main

    result = CliRunner().invoke(
        main, ["launch", "gold_job", "--from", "2013-02-01", "--through", "2013-01-01"]
    )
    assert result.exit_code == 2
    assert "--from ≤ --through" in result.output
