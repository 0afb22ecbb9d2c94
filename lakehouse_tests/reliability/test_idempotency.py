"""Materializing the same days of every asset three times gives identical tables, by content hash, and
so does processing a run's days in chunks rather than at once."""

import shutil
from datetime import date

from lakehouse import catalog
from lakehouse.partitions import Chunking
from lakehouse_tests.conftest import resources_at
from lakehouse_tests.pipeline import (
    GOLD_ASSETS,
    INGEST_ASSETS,
    LINEAGE_COLUMNS,
    TABLES,
    check_result,
    fingerprint,
    materialize,
)

JAN1, JAN2 = date(2013, 1, 1), date(2013, 1, 2)


def test_three_runs_of_every_layer_give_identical_tables(resources):
    runs = []
    for _ in range(3):
        assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, JAN1, JAN2).success
        runs.append(fingerprint(resources))
    assert set(runs[0]) == set(TABLES) | {t.warehouse_table for t in catalog.warehouse_tables()}
    assert runs[0] == runs[1] == runs[2]


def test_a_run_in_chunks_of_days_builds_the_same_tables_as_one_at_once(landed, tmp_path):
    shutil.copytree(landed, tmp_path / "chunked")
    at_once = resources_at(landed)
    assert materialize(INGEST_ASSETS + GOLD_ASSETS, at_once, JAN1, JAN2).success
    chunked = resources_at(tmp_path / "chunked") | {"chunking": Chunking(max_days=1)}
    result = materialize(INGEST_ASSETS + GOLD_ASSETS, chunked, JAN1, JAN2)
    assert result.success
    assert fingerprint(chunked, ignore=LINEAGE_COLUMNS) == fingerprint(at_once, ignore=LINEAGE_COLUMNS)
    assert check_result(result, "silver/flights", "schema").description.startswith(
        "each of 2 chunks of days passes"
    )
    assert check_result(result, "gold/flight_features", "label_rate").passed
