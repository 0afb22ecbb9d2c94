"""Quality checks shared by the layers, one per dimension, each showing the failing values.

They are plain functions of frames returning ``AssetCheckResult``s: the assets return them with their
materialization (so blocking checks stop downstream work), and tests call them directly.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import pandera.polars as pa
import polars as pl

from lakehouse.catalog import REFERENTIAL_INTEGRITY, ROW_CONSERVATION, SCHEMA, UNIQUE_KEYS
from lakehouse.metadata import markdown_table


def schema_check(
    asset_key: dg.AssetKey, frame: pl.DataFrame, model: type[pa.DataFrameModel]
) -> dg.AssetCheckResult:
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        summary = cases.group_by("column", "check").len().sort("len", descending=True)
        return dg.AssetCheckResult(
            check_name=SCHEMA.name,
            asset_key=asset_key,
            passed=False,
            description=f"{cases.height} value(s) break {model.__name__}",
            metadata={
                "failures_by_check": dg.MetadataValue.md(markdown_table(summary, 30)),
                "failure_cases": dg.MetadataValue.md(markdown_table(cases, 20)),
            },
        )
    return dg.AssetCheckResult(
        check_name=SCHEMA.name,
        asset_key=asset_key,
        passed=True,
        description=f"{frame.height:,} row(s) match {model.__name__}",
    )


def unique_check(asset_key: dg.AssetKey, frame: pl.DataFrame, key: list[str]) -> dg.AssetCheckResult:
    repeated = frame.group_by(key).len().filter(pl.col("len") > 1).sort("len", descending=True)
    return dg.AssetCheckResult(
        check_name=UNIQUE_KEYS,
        asset_key=asset_key,
        passed=repeated.height == 0,
        description=f"{repeated.height} key(s) repeat" if repeated.height else "every key is unique",
        metadata={
            "repeated_keys": repeated.height,
            "examples": dg.MetadataValue.md(markdown_table(repeated, 10)),
        },
    )


def conservation_check(
    asset_key: dg.AssetKey, bronze: pl.DataFrame, silver: pl.DataFrame, quarantine: pl.DataFrame
) -> dg.AssetCheckResult:
    """Each input is a frame of ``partition`` and ``rows``; every partition must balance."""
    ledger = (
        bronze.rename({"rows": "bronze"})
        .join(silver.rename({"rows": "silver"}), on="partition", how="full", coalesce=True)
        .join(quarantine.rename({"rows": "quarantined"}), on="partition", how="full", coalesce=True)
        .fill_null(0)
        .with_columns(difference=pl.col("bronze") - pl.col("silver") - pl.col("quarantined"))
        .sort("partition")
    )
    unbalanced = ledger.filter(pl.col("difference") != 0)
    totals = ledger.select(pl.col("bronze", "silver", "quarantined").sum()).row(0, named=True)
    return dg.AssetCheckResult(
        check_name=ROW_CONSERVATION.name,
        asset_key=asset_key,
        passed=unbalanced.height == 0,
        description=(
            f"{unbalanced.height} partition(s) do not balance"
            if unbalanced.height
            else f"{totals['bronze']:,} bronze = {totals['silver']:,} silver"
            f" + {totals['quarantined']:,} quarantined"
        ),
        metadata={
            **{f"{k}_rows": v for k, v in totals.items()},
            "unbalanced": dg.MetadataValue.md(markdown_table(unbalanced, 20)),
        },
    )


def orphans(frame: pl.DataFrame, relations: Mapping[str, tuple[str, pl.Series]]) -> dict[str, pl.DataFrame]:
    """Per coded column, the values not among its reference table's keys, with their rows (``len``);
    nulls are not references. Chunks of one run add up with ``merge_orphans``."""
    return {
        column: frame.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(keys.implode()))
        .group_by(column)
        .len()
        for column, (_, keys) in relations.items()
    }


def merge_orphans(found: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """The orphans of several chunks as those of their union: a value counted once, its rows summed."""
    columns = {column for chunk in found for column in chunk}
    return {
        column: pl.concat([chunk[column] for chunk in found if column in chunk])
        .group_by(column)
        .agg(pl.col("len").sum())
        for column in columns
    }


def referential_check(
    asset_key: dg.AssetKey,
    frame: pl.DataFrame | Mapping[str, pl.DataFrame],
    relations: Mapping[str, tuple[str, pl.Series]],
) -> dg.AssetCheckResult:
    """``relations`` maps a column to (reference table, its keys). ``frame`` is the checked rows, or the
    ``orphans`` already found in them (merged across chunks)."""
    found = orphans(frame, relations) if isinstance(frame, pl.DataFrame) else frame
    metadata: dict[str, object] = {}
    problems = []
    for column, (table, _) in relations.items():
        none = pl.DataFrame(schema={column: pl.String, "len": pl.UInt32})
        missing = found.get(column, none).sort("len", column, descending=[True, False])
        rows = int(missing["len"].sum()) if missing.height else 0
        metadata[f"{column}_not_in_{table}_rows"] = rows
        metadata[f"{column}_not_in_{table}_values"] = missing.height
        if rows:
            problems.append(f"{rows:,} row(s) with {missing.height} {column} value(s) not in {table}")
            metadata[f"{column}_examples"] = dg.MetadataValue.md(markdown_table(missing, 10))
    return dg.AssetCheckResult(
        check_name=REFERENTIAL_INTEGRITY.name,
        asset_key=asset_key,
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(problems) if problems else "every reference resolves",
        metadata=metadata,
    )


def combine(results: list[dg.AssetCheckResult]) -> dg.AssetCheckResult:
    """One check evaluated chunk by chunk (a long backfill), as one result: it passes if every chunk
    passed. Counts (integer metadata) are summed; rates and other floats describe one chunk and are left
    out; tables and text come from the first failing chunk (else the first)."""
    if len(results) == 1:
        return results[0]
    first, failed = results[0], [r for r in results if not r.passed]
    shown = failed[0] if failed else first
    metadata = {name: value for name, value in shown.metadata.items() if not isinstance(value.value, float)}
    for name, value in first.metadata.items():
        if isinstance(value.value, int) and not isinstance(value.value, bool):
            metadata[name] = sum(r.metadata[name].value for r in results if name in r.metadata)
    description = (
        f"{len(failed)} of {len(results)} chunks of days fail; the first: {failed[0].description}"
        if failed
        else f"each of {len(results)} chunks of days passes; the last: {results[-1].description}"
    )
    return dg.AssetCheckResult(
        check_name=first.check_name,
        asset_key=first.asset_key,
        passed=not failed,
        severity=first.severity,
        description=description,
        metadata=metadata,
    )


def ledger(counts: Mapping[object, int]) -> pl.DataFrame:
    """Rows per partition already counted (``partitions.rows_per_day``), as ``counts_by`` gives them."""
    return pl.DataFrame(
        {"partition": [str(p) for p in counts], "rows": list(counts.values())},
        schema={"partition": pl.String, "rows": pl.Int64},
    )


def counts_by(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Rows per value of ``column``, as ``partition``/``rows`` for the conservation ledger."""
    return frame.group_by(pl.col(column).cast(pl.String).alias("partition")).agg(rows=pl.len().cast(pl.Int64))


# The metadata key under which a materialization lists its checks that failed: sensors read it from the
# materialization (a public record) instead of the checks' history.
FAILED_CHECKS = "failed_checks"


def failed_checks(results: list[dg.AssetCheckResult]) -> dict[str, dg.MetadataValue]:
    """The names of the checks among ``results`` that failed, as materialization metadata."""
    return {FAILED_CHECKS: dg.MetadataValue.json(sorted({r.check_name for r in results if not r.passed}))}
