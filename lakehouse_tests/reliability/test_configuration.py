"""Configuration and secrets: a wrong path, a missing or misspelt variable, or a store that does not
answer stops the lakehouse at start-up with one error naming every problem; credentials live only in
the environment; SQL is built from the code's own identifiers, with values passed as parameters."""

from __future__ import annotations

import ast
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lakehouse.settings import ConfigurationError, load_settings

PROJECT = Path(__file__).resolve().parents[2]


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(env)
    return raised.value.problems


def free_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_defaults_start(tmp_path: Path):
    settings = load_settings({"LAKEHOUSE_DATA_DIR": str(tmp_path / "data")})
    assert settings.lake_uri == str(tmp_path / "data" / "lake")
    assert settings.end_date.isoformat() == "2014-01-01" and settings.retrain_cooldown_hours == 6


def test_every_problem_is_named_at_once_with_its_variable(tmp_path: Path):
    (tmp_path / "taken").write_text("a file where a folder should be")
    found = problems(
        {
            "LAKEHOUSE_LAKE_URL": "/somewhere",
            "LAKEHOUSE_LANDING_URI": str(tmp_path / "no-such-landing"),
            "LAKEHOUSE_SOURCE_DATABASE": str(tmp_path / "missing.sqlite"),
            "LAKEHOUSE_LAKE_URI": str(tmp_path / "taken"),
            "LAKEHOUSE_RETRAIN_MIN_NEW_DAYS": "seven",
            "LAKEHOUSE_START_DATE": "2013-02-30",
            "LAKEHOUSE_END_DATE": "2012-01-01",
        }
    )
    assert found == [
        "LAKEHOUSE_LAKE_URL is not a setting of the lakehouse; did you mean LAKEHOUSE_LAKE_URI?",
        f"LAKEHOUSE_LANDING_URI='{tmp_path}/no-such-landing': no such folder",
        f"LAKEHOUSE_SOURCE_DATABASE='{tmp_path}/missing.sqlite': no such file",
        f"LAKEHOUSE_LAKE_URI='{tmp_path}/taken' is a file, not a folder",
        "LAKEHOUSE_START_DATE='2013-02-30' is not a date (YYYY-MM-DD)",
        "LAKEHOUSE_END_DATE=2012-01-01 is not after LAKEHOUSE_START_DATE=2013-01-01",
        "LAKEHOUSE_RETRAIN_MIN_NEW_DAYS='seven' is not a whole number",
    ]


def test_an_object_store_without_credentials_is_refused(tmp_path: Path):
    base = {"LAKEHOUSE_DATA_DIR": str(tmp_path), "LAKEHOUSE_LAKE_URI": "s3://bucket/lake"}
    [missing] = problems(base)
    assert (
        "LAKEHOUSE_LAKE_URI='s3://bucket/lake' needs credentials: set AWS_ACCESS_KEY_ID or AWS_PROFILE"
        in missing
    )
    [half] = problems(base | {"AWS_ACCESS_KEY_ID": "id"})
    assert half.endswith("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is missing")
    assert load_settings(base | {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key"})
    assert load_settings(base | {"LAKEHOUSE_AMBIENT_CREDENTIALS": "true"})
    [azure] = problems(base | {"LAKEHOUSE_LAKE_URI": "az://container/lake", "AZURE_STORAGE_SAS_TOKEN": "t"})
    assert azure.endswith("needs AZURE_STORAGE_ACCOUNT_NAME")
    [scheme] = problems(base | {"LAKEHOUSE_LAKE_URI": "ftp://host/lake"})
    assert "unknown scheme ftp://" in scheme


def test_a_store_that_does_not_answer_is_refused_and_one_that_does_is_not(tmp_path: Path):
    base = {"LAKEHOUSE_DATA_DIR": str(tmp_path)}
    silent = f"http://127.0.0.1:{free_port()}"
    [tracking] = problems(base | {"MLFLOW_TRACKING_URI": silent})
    assert tracking.startswith(f"MLFLOW_TRACKING_URI='{silent}': the tracking server does not answer")
    [endpoint] = problems(
        base
        | {
            "LAKEHOUSE_LAKE_URI": "s3://bucket/lake",
            "LAKEHOUSE_AMBIENT_CREDENTIALS": "true",
            "AWS_ENDPOINT_URL": silent,
        }
    )
    assert f"the object store at AWS_ENDPOINT_URL={silent} does not answer" in endpoint

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answering = f"http://127.0.0.1:{server.server_port}"
        assert load_settings(base | {"MLFLOW_TRACKING_URI": answering}).mlflow_tracking_uri == answering
    finally:
        server.shutdown()


@pytest.mark.slow
def test_start_up_stops_with_the_settings_error_before_any_run(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "LAKEHOUSE_LANDING_URI": str(tmp_path / "typo")}
    job = subprocess.run(
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
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=PROJECT,
    )
    assert job.returncode != 0
    assert job.stderr.strip().endswith(f"LAKEHOUSE_LANDING_URI='{tmp_path}/typo': no such folder")
    assert "RUN_START" not in job.stdout + job.stderr
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "lakehouse"), "summary"],
        env=env,
        capture_output=True,
        text=True,
        cwd=PROJECT,
    )
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert cli.stderr.startswith("Error: the lakehouse cannot start, 1 problem(s) in its settings:")


SECRET_PATTERNS = {
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "an assigned secret": re.compile(
        r"(secret_access_key|password|passwd|api_key|token)\s*[:=]\s*['\"][^'\"\s]{8,}['\"]", re.IGNORECASE
    ),
}


def test_no_credentials_are_in_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in tracked:
        path = PROJECT / name
        if path.suffix in {".zip", ".png", ".parquet", ".sqlite"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        found += [f"{name}: {what}" for what, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    assert len(tracked) > 50 and found == []


# The only names that may be formatted into SQL text: identifiers the code itself chose, and the
# ``where`` clause callers write with ``?`` placeholders for their values.
SQL_IDENTIFIERS = {"table", "schema", "name", "column", "column_type", "columns", "where"}


def test_sql_formats_only_identifiers_and_takes_values_as_parameters():
    formatted = []
    for path in (PROJECT / "lakehouse").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"sql", "execute"}
                and node.args
                and isinstance(node.args[0], ast.JoinedStr)
            ):
                continue
            for part in node.args[0].values:
                if isinstance(part, ast.FormattedValue):
                    formatted.append((path.name, node.lineno, ast.unparse(part.value)))
    assert formatted, "the scan found no formatted SQL at all: it is looking in the wrong place"
    # A table's name in the catalog (``FLIGHT_FEATURES.warehouse_table``) is the code's own identifier too.
    identifiers = [f for f in formatted if f[2] in SQL_IDENTIFIERS or f[2].endswith(".warehouse_table")]
    assert [f for f in formatted if f not in identifiers] == []


def test_the_live_path_settings(tmp_path: Path):
    base = {"LAKEHOUSE_DATA_DIR": str(tmp_path / "data")}
    settings = load_settings(base)
    assert settings.redis_url == "redis://127.0.0.1:6390/0" and settings.serve_token is None
    assert load_settings({**base, "LAKEHOUSE_SERVE_TOKEN": "t0k"}).serve_token == "t0k"
    assert problems({**base, "LAKEHOUSE_REDIS_URL": "http://127.0.0.1:6379"}) == [
        "LAKEHOUSE_REDIS_URL='http://127.0.0.1:6379': not a Redis URL (use redis://, rediss://, unix://)"
    ]


def test_live_commands_name_a_store_that_does_not_answer(tmp_path: Path, monkeypatch):
    from click.testing import CliRunner

    from lakehouse import settings
    from lakehouse.cli import main

    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LAKEHOUSE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    settings.current.cache_clear()
    try:
        for command in (
            ["replay", "--live", "--from", "2013-01-01", "--through", "2013-01-01"],
            ["stream", "--nice", "0"],
        ):
            result = CliRunner().invoke(main, command)
            assert result.exit_code == 1
            assert "the online store at redis://127.0.0.1:" in result.output
            assert "does not answer" in result.output and "check LAKEHOUSE_REDIS_URL" in result.output
        result = CliRunner().invoke(main, ["replay", "--live", "--speed", "fast"])
        assert result.exit_code == 2 and "'fast' is neither a number nor 'max'" in result.output
    finally:
        settings.current.cache_clear()
