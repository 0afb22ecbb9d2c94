"""How a run's days are cut into chunks: by days, and by rows where the rows per day are known."""

from datetime import date, timedelta

import pytest

from lakehouse.partitions import Chunking

DAYS = [date(2013, 1, 1) + timedelta(days=i) for i in range(70)]


def test_days_are_cut_into_runs_of_at_most_max_days():
    found = Chunking().chunks(DAYS)
    assert [len(c) for c in found] == [31, 31, 8]
    assert [d for c in found for d in c] == DAYS


def test_rows_per_day_cut_chunks_earlier_and_a_heavy_day_stands_alone():
    rows = {day: 300 for day in DAYS[:10]} | {DAYS[4]: 5000}
    found = Chunking(max_rows=1000).chunks(DAYS[:10], rows)
    assert [len(c) for c in found] == [3, 1, 1, 3, 2]
    assert found[2] == [DAYS[4]]
    assert Chunking().chunks([], rows) == []


def test_a_chunk_of_no_days_is_refused():
    with pytest.raises(ValueError, match="max_days and max_rows of at least 1"):
        Chunking(max_days=0).chunks(DAYS)
