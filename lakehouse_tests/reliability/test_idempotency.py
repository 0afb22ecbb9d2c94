"""Materializing the same days of every asset three times gives identical tables, by content hash."""

from datetime import date

from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, TABLES, fingerprint, materialize

JAN1, JAN2 = date(2013, 1, 1), date(2013, 1, 2)


def test_three_runs_of_every_layer_give_identical_tables(resources):
    runs = []
    for _ in range(3):
        assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, JAN1, JAN2).success
        runs.append(fingerprint(resources))
    assert set(TABLES) < set(runs[0]) and len(runs[0]) == len(TABLES) + 2 + 5
    assert runs[0] == runs[1] == runs[2]
