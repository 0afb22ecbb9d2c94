"""The silver checks fail on injected bad rows and show the failing values."""

from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from lakehouse import quality as checks
from lakehouse.lib.schemas import SilverAirlines

KEY = dg.AssetKey(["silver", "test"])
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def airlines(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        [(*row, 1, "run", NOW) for row in rows],
        schema={
            "carrier": pl.String,
            "name": pl.String,
            "_source_line": pl.Int64,
            "_run_id": pl.String,
            "_loaded_at": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )


def test_schema_check_lists_the_failing_values():
    result = checks.schema_check(KEY, airlines(("UA", "United"), ("DL", None)), SilverAirlines)
    assert not result.passed
    assert "DL" not in result.metadata["failure_cases"].value  # the failing value is the null name
    assert "name" in result.metadata["failures_by_check"].value
    assert checks.schema_check(KEY, airlines(("UA", "United")), SilverAirlines).passed


def test_schema_check_catches_an_extra_or_retyped_column():
    extra = airlines(("UA", "United")).with_columns(gate=pl.lit("B"))
    assert not checks.schema_check(KEY, extra, SilverAirlines).passed
    retyped = airlines(("UA", "United")).with_columns(pl.col("_source_line").cast(pl.String))
    assert not checks.schema_check(KEY, retyped, SilverAirlines).passed


def test_unique_check_shows_repeated_keys():
    result = checks.unique_check(KEY, airlines(("UA", "United"), ("UA", "United again")), ["carrier"])
    assert not result.passed
    assert result.metadata["repeated_keys"].value == 1
    assert "UA" in result.metadata["examples"].value


def test_conservation_check_names_unbalanced_partitions():
    result = checks.conservation_check(
        KEY,
        checks.ledger({"2013-01-01": 10, "2013-01-02": 5}),
        checks.ledger({"2013-01-01": 9, "2013-01-02": 5}),
        checks.ledger({"2013-01-01": 0}),
    )
    assert not result.passed
    assert "2013-01-01" in result.metadata["unbalanced"].value
    assert "2013-01-02" not in result.metadata["unbalanced"].value
    assert checks.conservation_check(
        KEY, checks.ledger({"d": 3}), checks.ledger({"d": 2}), checks.ledger({"d": 1})
    ).passed


def test_referential_check_warns_with_counts_and_examples():
    flights = pl.DataFrame({"dest": ["IAH", "SJU", "SJU", None], "flight_date": [date(2013, 1, 1)] * 4})
    result = checks.referential_check(KEY, flights, {"dest": ("airports", pl.Series(["IAH", "JFK"]))})
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["dest_not_in_airports_rows"].value == 2
    assert "SJU" in result.metadata["dest_examples"].value


def test_chunked_evaluations_combine_counts_and_keep_the_first_failure():
    def result(passed: bool, repeated: int, rate: float) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name="unique_keys",
            asset_key=KEY,
            passed=passed,
            description=f"{repeated} key(s) repeat",
            metadata={
                "repeated_keys": repeated,
                "late_rate": rate,
                "examples": dg.MetadataValue.md(str(rate)),
            },
        )

    combined = checks.combine([result(True, 0, 0.2), result(False, 2, 0.3), result(False, 5, 0.4)])
    assert not combined.passed
    assert combined.description == "2 of 3 chunks of days fail; the first: 2 key(s) repeat"
    assert combined.metadata["repeated_keys"].value == 7
    assert "late_rate" not in combined.metadata  # a rate of one chunk is not the run's
    assert combined.metadata["examples"].value == "0.3"
    passing = checks.combine([result(True, 0, 0.2), result(True, 0, 0.3)])
    assert passing.passed and passing.description.startswith("each of 2 chunks of days passes")
    assert checks.combine([only := result(True, 1, 0.5)]) is only
