"""A year's backfill fanned out by Dagster's daemon into runs of at most K days (``LAKEHOUSE_BACKFILL_DAYS``),
with the run queue starting 1 or P of them at a time (``max_concurrent_runs``), against the same year as
one run; what each builds is compared by content.

Each fanned-out backfill runs in its own Dagster webserver and daemon (the run queue; sensors and
schedules stopped so the backfill runs alone), submitted and followed with ``lakehouse.backfill``, the
client behind ``lakehouse backfill``. Its time runs from submitting to the backfill's end (``dagster
dev``-like start-up is not counted: a deployment's daemon is always up); its peak memory is the most that
the webserver, the daemon and every process under them (code servers, the runs) held at once, sampled
every poll (psutil, a dependency of Dagster's).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import psutil
from deltalake import DeltaTable

from benchmarks.serving import free_port, wait_for
from lakehouse.backfill import Dagster, days, job_assets

PROJECT = Path(__file__).resolve().parent.parent
JOB = "gold_job"
# Columns that say which run wrote a row and when: they differ between any two backfills.
LINEAGE = {"_run_id", "_loaded_at", "_source_file", "run_id", "loaded_at", "source_file"}


def _frame_hash(frame: pl.DataFrame) -> str:
    """A hash of the rows' values whatever their order and file layout (lineage columns left out)."""
    frame = frame.drop(sorted(LINEAGE & set(frame.columns)))
    rows = frame.select(sorted(frame.columns)).hash_rows(seed=0).sort()
    return hashlib.sha256(rows.to_numpy().tobytes()).hexdigest()


def contents(state: Path) -> dict[str, str]:
    """The content hash of every Delta table under ``state/lake`` and every warehouse table."""
    hashes = {}
    lake = state / "lake"
    for log in sorted(lake.rglob("_delta_log")):
        table = log.parent.relative_to(lake).as_posix()
        hashes[table] = _frame_hash(pl.from_arrow(DeltaTable(str(log.parent)).to_pyarrow_table()))
    with duckdb.connect(str(state / "warehouse.duckdb"), read_only=True) as connection:
        for (table,) in connection.sql(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        ).fetchall():
            hashes[table] = _frame_hash(connection.sql(f"SELECT * FROM {table}").pl())
    return hashes


def differences(left: dict[str, str], right: dict[str, str]) -> list[str]:
    return sorted(t for t in left.keys() | right.keys() if left.get(t) != right.get(t))


def instance_yaml(runs_at_once: int) -> str:
    """The project's ``dagster.yaml`` with the run queue's limit set to ``runs_at_once``."""
    text = (PROJECT / "lakehouse" / "dagster.yaml").read_text()
    if "max_concurrent_runs: 4" not in text:
        raise RuntimeError("lakehouse/dagster.yaml no longer sets max_concurrent_runs: 4")
    return text.replace("max_concurrent_runs: 4", f"max_concurrent_runs: {runs_at_once}")


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as output:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / command[0]), *command[1:]],
            cwd=PROJECT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def fanned_out(env: dict[str, str], first: date, last: date, runs_at_once: int) -> tuple[float, float, int]:
    """Backfill ``JOB`` over ``first``..``last`` through Dagster's webserver and daemon in ``env`` (its
    ``DAGSTER_HOME`` gets the run limit): seconds from submission to the end, peak MiB, runs.

    The webserver starts first and the sensors and schedules are stopped through it before the daemon
    starts (``dagster dev`` would start both at once, and the landing sensor's first tick would ask for
    the landed year before it could be stopped)."""
    home = Path(env["DAGSTER_HOME"])
    (home / "dagster.yaml").write_text(instance_yaml(runs_at_once))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workspace = ["-w", "workspace.yaml"]
    webserver = _start(
        ["dagster-webserver", *workspace, "-h", "127.0.0.1", "-p", str(port)], env, home / "webserver.log"
    )
    daemon = None
    try:
        wait_for(f"{url}/server_info", webserver, f"the webserver (log: {home / 'webserver.log'})", 180)
        dagster = Dagster(url)
        dagster.stop_automation()
        daemon = _start(["dagster-daemon", "run", *workspace], env, home / "daemon.log")
        peak = [0.0]

        def on_progress(progress) -> None:
            print(f"        {progress.line()}", flush=True)
            peak[0] = max(peak[0], _resident_mib(webserver.pid) + _resident_mib(daemon.pid))

        started = time.perf_counter()
        backfill_id = dagster.submit(JOB, job_assets(JOB), days(first, last))
        final = dagster.follow(backfill_id, on_progress, poll_seconds=2.0)
        seconds = time.perf_counter() - started
        if not final.succeeded:
            raise RuntimeError(f"backfill {backfill_id} ended {final.line()}: {final.error}")
        return seconds, peak[0], sum(final.runs.values())
    finally:
        for process in (daemon, webserver):
            if process is not None:
                _stop(process)


def _resident_mib(pid: int) -> float:
    """The resident memory of process ``pid`` and all its descendants together."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def _stop(server: subprocess.Popen) -> None:
    """Stop a server and its process group (SIGTERM, then SIGKILL after a minute)."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
