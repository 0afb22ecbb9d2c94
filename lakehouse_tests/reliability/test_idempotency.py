"""Materializing the same days of every asset three times gives identical tables, by content hash."""

import hashlib
from datetime import date

import duckdb

from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, TABLES, content_hash, materialize

JAN1, JAN2 = date(2013, 1, 1), date(2013, 1, 2)


def fingerprint(resources) -> dict[str, str]:
    hashes = {table: content_hash(resources["lake"], table) for table in TABLES}
    with duckdb.connect(resources["warehouse"].database, read_only=True) as connection:
        for (table,) in connection.sql(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        ).fetchall():
            frame = connection.sql(f"SELECT * FROM {table}").pl()
            hashes[table] = hashlib.sha256(frame.sort(frame.columns).write_csv().encode()).hexdigest()
    return hashes


def test_three_runs_of_every_layer_give_identical_tables(resources):
    runs = []
    for _ in range(3):
        assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, JAN1, JAN2).success
        runs.append(fingerprint(resources))
    assert len(runs[0]) == len(TABLES) + 5
    assert runs[0] == runs[1] == runs[2]
