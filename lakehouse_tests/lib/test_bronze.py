from datetime import UTC, date, datetime

import pytest

from lakehouse.lib.bronze import LandingFileError, read_flights_file, read_jsonl_file
from lakehouse.lib.contracts import FLIGHTS_SOURCE_SCHEMA

HEADER = ",".join(FLIGHTS_SOURCE_SCHEMA)
ROW = "2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-01T10:00:00Z"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
DAY = date(2013, 1, 1)


def read(text: bytes | str):
    content = text if isinstance(text, bytes) else text.encode()
    return read_flights_file(content, "flights/2013-01-01.csv", DAY, NOW, "run-1")


def test_values_are_kept_as_delivered_with_lineage():
    frame = read(f"{HEADER}\n{ROW}\n{ROW.replace('517', 'NA')}\n")
    assert frame["dep_time"].to_list() == ["517", "NA"]
    assert frame["_source_line"].to_list() == [2, 3]
    assert frame["_source_file"][0] == "flights/2013-01-01.csv"
    assert frame["_landing_date"][0] == DAY
    assert frame["_run_id"][0] == "run-1"
    assert len(frame["_source_sha256"][0]) == 64


def test_an_extra_column_is_kept():
    frame = read(f"{HEADER},gate\n{ROW},B22\n")
    assert frame["gate"].to_list() == ["B22"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (HEADER.replace(",dep_delay", "").encode() + b"\n", "missing column\\(s\\) dep_delay"),
        (HEADER.replace(",", ";").encode() + b"\n", "missing column"),
        (f"{HEADER}\n{ROW}\n{ROW[:40]}\n".encode(), "line 3: .*fields where the header has 19"),
        (f"{HEADER}\n{ROW}\n".encode() + b"2013,1,1,\xff\xfe\n", "line 3: byte 0xff is not UTF-8"),
    ],
    ids=["empty", "missing-column", "wrong-delimiter", "truncated-row", "not-utf8"],
)
def test_unreadable_files_name_the_file_line_and_problem(content: bytes, message: str):
    with pytest.raises(LandingFileError, match=f"flights/2013-01-01.csv.*{message}"):
        read(content)


def test_json_lines_keep_each_line_whole_and_numbered():
    frame = read_jsonl_file(b'{"origin": "EWR"}\n\n{broken\n', "weather/2013-01-01.jsonl", DAY, NOW, "run-1")
    assert frame["_raw"].to_list() == ['{"origin": "EWR"}', "{broken"]
    assert frame["_source_line"].to_list() == [1, 3]
