"""A run that dies: materialize bronze, silver and gold for two days and SIGKILL this very process at a
chosen point of a write, as the kernel's OOM killer or a lost machine would.

    python -m lakehouse_tests.reliability.crash <data folder> <point>

Points are ``during:<table>`` (a Delta table: killed as soon as the write's first data file appears,
before its commit; the warehouse: killed inside the transaction, before COMMIT) and ``after:<table>``
(killed right after the write committed, before the rest of the asset ran). Before dying the process
writes ``<data folder>/killed`` saying where it was, so the test knows the kill happened where it meant.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from datetime import date
from pathlib import Path

import lakehouse.resources as resources_module
from lakehouse.resources import LakeStorage, Warehouse
from lakehouse_tests.conftest import resources_at
from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, materialize

DAYS = date(2013, 1, 1), date(2013, 1, 2)


def die(data: Path, where: str) -> None:
    (data / "killed").write_text(where)
    os.kill(os.getpid(), signal.SIGKILL)


def data_files(folder: Path) -> set[Path]:
    return set(folder.rglob("*.parquet*")) if folder.exists() else set()


def kill_during_delta_write(data: Path, table: str) -> None:
    """Kill the process when the write to ``table`` has put its first data file down, before its commit."""
    real_write = resources_module.write_deltalake
    folder = data / "lake" / table

    def write(uri, *args, **kwargs):
        if not str(uri).endswith(table):
            return real_write(uri, *args, **kwargs)
        before = data_files(folder)

        def watch() -> None:
            while True:
                if data_files(folder) - before:
                    die(data, f"during:{table}")
                time.sleep(0.0005)

        threading.Thread(target=watch, daemon=True).start()
        result = real_write(uri, *args, **kwargs)
        die(data, f"after:{table} (the write finished before the watcher saw a file)")
        return result

    resources_module.write_deltalake = write


def kill_after_delta_write(data: Path, table: str) -> None:
    real_replace = LakeStorage.replace_where

    def replace_where(self, name, *args, **kwargs):
        write = real_replace(self, name, *args, **kwargs)
        if name == table:
            die(data, f"after:{table}")
        return write

    LakeStorage.replace_where = replace_where


def kill_inside_warehouse_transaction(data: Path, table: str) -> None:
    """Kill the process after the DELETE and INSERT of ``table``'s rows, before their COMMIT."""
    real_replace_rows = Warehouse.replace_rows

    class Dying:
        def __init__(self, connection):
            self.connection = connection

        def execute(self, statement, *args):
            if statement == "COMMIT":
                die(data, f"during:{table}")
            return self.connection.execute(statement, *args)

        def __getattr__(self, name):
            return getattr(self.connection, name)

    def replace_rows(self, connection, name, *args, **kwargs):
        if name == table:
            connection = Dying(connection)
        return real_replace_rows(self, connection, name, *args, **kwargs)

    Warehouse.replace_rows = replace_rows


def main() -> None:
    data, point = Path(sys.argv[1]), sys.argv[2]
    when, table = point.split(":", 1)
    if when == "during" and table.startswith("gold."):
        kill_inside_warehouse_transaction(data, table)
    elif when == "during":
        kill_during_delta_write(data, table)
    else:
        kill_after_delta_write(data, table)
    materialize(INGEST_ASSETS + GOLD_ASSETS, resources_at(data), *DAYS)
    sys.exit(f"the run finished without reaching {point}")


if __name__ == "__main__":
    main()
