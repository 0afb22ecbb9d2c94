"""Concurrent writers lose nothing: Delta commits of different days from several processes all land, and
warehouse writers wait for each other instead of failing on DuckDB's lock."""

import concurrent.futures
import functools
import multiprocessing
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from lakehouse.resources import LakeStorage, Warehouse, consecutive_spans

DAYS = [date(2013, 1, 1) + timedelta(days=i) for i in range(8)]


def write_day(root: str, day: date) -> None:
    frame = pl.DataFrame({"day": [day] * 1000, "value": list(range(1000))})
    LakeStorage(root=root).replace_dates("bronze/t", frame, "day", [day], f"run-{day}")


def hold_warehouse(database: str, seconds: float, holding) -> None:
    with Warehouse(database=database).get_connection() as connection:
        connection.sql("CREATE TABLE IF NOT EXISTS held AS SELECT 1 AS x")
        holding.set()
        time.sleep(seconds)


def test_concurrent_writers_of_different_days_lose_no_commit(tmp_path: Path):
    root = str(tmp_path / "lake")
    write_day(root, DAYS[0])
    # Polars is not fork-safe: the writers are spawned processes, as separate runs would be. The executor
    # waits for its workers to finish (a Pool would SIGTERM them on exit, which can hang on a busy worker).
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=4, mp_context=spawn) as writers:
        list(writers.map(functools.partial(write_day, root), DAYS, timeout=300))
    lake = LakeStorage(root=root)
    table = lake.scan("bronze/t").collect()
    assert table.height == 8000 and table["day"].n_unique() == 8
    assert lake.version("bronze/t") == 8  # the seed write and eight more, none lost


def test_a_warehouse_writer_waits_for_the_one_before_it(tmp_path: Path):
    database = str(tmp_path / "warehouse.duckdb")
    spawn = multiprocessing.get_context("spawn")
    holding = spawn.Event()
    holder = spawn.Process(target=hold_warehouse, args=(database, 1.5, holding))
    holder.start()
    assert holding.wait(timeout=60), "the first writer never took the warehouse"
    started = time.monotonic()
    with Warehouse(database=database, lock_timeout_seconds=20).get_connection() as connection:
        waited = time.monotonic() - started
        assert connection.sql("SELECT x FROM held").fetchall() == [(1,)]
    holder.join()
    assert holder.exitcode == 0 and waited > 0.1


@pytest.mark.parametrize("write", ["replace_dates", "append"])
def test_writers_that_create_a_table_at_once_all_land(tmp_path: Path, write: str):
    # The first runs of a fanned-out backfill write their first days at the same moment, each finding no
    # table: one creates it, the others' commits fail and are made again against the table it created.
    lake, start = LakeStorage(root=str(tmp_path / "lake")), threading.Barrier(4)
    versions, errors = [], []

    def create(day: date) -> None:
        frame = pl.DataFrame({"day": [day] * 100, "value": list(range(100))})
        start.wait()
        try:
            if write == "append":
                versions.append(lake.append("bronze/t", frame, ["day"], f"writer-{day}").version)
            else:
                versions.append(lake.replace_dates("bronze/t", frame, "day", [day], f"run-{day}").version)
        except Exception as error:  # collected, shown by the assertion below
            errors.append(error)

    writers = [threading.Thread(target=create, args=(day,)) for day in DAYS[:4]]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert not errors
    table = lake.scan("bronze/t").collect()
    assert table.height == 400 and sorted(table["day"].unique()) == DAYS[:4]
    assert sorted(versions) == [0, 1, 2, 3]  # each writer reports its own commit, none lost


def test_runs_writing_different_months_at_once_lose_no_commit(tmp_path: Path):
    # Two runs of a fanned-out backfill each replace a month at a time in one table. A long IN list of
    # dates made deltalake refuse such commits as conflicting ("a concurrent transaction added new data");
    # ranges of days do not overlap and both runs' commits land.
    lake = LakeStorage(root=str(tmp_path / "lake"))
    write_day(lake.root, DAYS[0] - timedelta(days=1))
    start, errors = threading.Barrier(2), []

    def run(first: date) -> None:
        start.wait()
        for month in range(3):
            days = [first + timedelta(days=30 * month + n) for n in range(30)]
            frame = pl.DataFrame({"day": [d for d in days for _ in range(200)], "value": range(200 * 30)})
            try:
                lake.replace_dates("bronze/t", frame, "day", days, f"run-{first}")
            except Exception as error:  # collected, shown by the assertion below
                errors.append(error)

    runs = [threading.Thread(target=run, args=(first,)) for first in (date(2013, 1, 1), date(2013, 7, 1))]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=300)
    assert not errors
    assert lake.scan("bronze/t").select(pl.col("day").n_unique()).collect().item() == 1 + 2 * 90
    assert lake.version("bronze/t") == 6  # the seed and three months from each run


def test_days_are_written_as_ranges_of_consecutive_days():
    days = [date(2013, 1, 3), date(2013, 1, 1), date(2013, 1, 2), date(2013, 1, 5), date(2013, 1, 5)]
    assert consecutive_spans(days) == [
        (date(2013, 1, 1), date(2013, 1, 3)),
        (date(2013, 1, 5), date(2013, 1, 5)),
    ]
