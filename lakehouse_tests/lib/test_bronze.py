from datetime import UTC, date, datetime

import polars as pl
import pytest

from lakehouse.lib.bronze import LandingFileError, Tolerance, read_flights_file, read_jsonl_file
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
        (
            f"{HEADER}\n{ROW}\n".encode() + b"2013,1,1,\xff\xfe\n",
            "line 3: .*byte 0xff at column 10 is not UTF-8",
        ),
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


def test_a_byte_order_mark_and_crlf_line_endings_are_read_past():
    frame = read(f"\ufeff{HEADER}\r\n{ROW}\r\n".encode())
    assert frame["year"].to_list() == ["2013"] and frame["time_hour"][0].endswith("Z")
    weather = read_jsonl_file(b'\xef\xbb\xbf{"origin": "EWR"}\n', "w.jsonl", DAY, NOW, "run-1")
    assert weather["_raw"].to_list() == ['{"origin": "EWR"}']


def test_a_malformed_row_among_good_ones_is_kept_marked_with_its_raw_bytes():
    rows = [ROW] * 30
    content = f"{HEADER}\n" + "\n".join(rows[:5]) + f"\n{ROW[:40]}\n" + "\n".join(rows[5:]) + "\n"
    content = content.encode() + b"2013,1,1,\xff\xfe\n"
    frame = read(content)
    malformed = frame.filter(pl.col("_malformed").is_not_null())
    assert malformed.select("_source_line", "_malformed").rows() == [
        (7, "malformed_row"),
        (33, "invalid_encoding"),
    ]
    assert malformed["_raw_line"].to_list() == [ROW[:40], "2013,1,1,\\xff\\xfe"]
    assert "fields where the header has 19" in malformed["_malformed_detail"][0]
    assert frame.filter(pl.col("_malformed").is_null()).height == 30


def test_a_file_that_is_not_in_its_format_is_unreadable_and_names_the_lines():
    csv_as_json = f"{HEADER}\n{ROW}\n{ROW}\n".encode()
    with pytest.raises(
        LandingFileError, match=r"w\.jsonl: only 0 of 3 lines parse as JSON .* line 1: \"year"
    ):
        read_jsonl_file(csv_as_json, "w.jsonl", DAY, NOW, "run-1")
    lenient = Tolerance(min_parsed_share=0.01, max_malformed_share=0.5)
    one_bad = f"{HEADER}\n{ROW}\n{ROW}\n{ROW[:40]}\n".encode()
    assert read_flights_file(one_bad, "f.csv", DAY, NOW, "r", tolerance=lenient).height == 3
    with pytest.raises(LandingFileError, match=r"1 of 3 lines are malformed \(more than the 10% tolerated\)"):
        read(one_bad)
