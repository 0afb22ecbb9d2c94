"""The check on what landed: is every day's file there, with rows."""

from __future__ import annotations

import dagster as dg

from lakehouse.catalog import LANDING_COMPLETE, Table


def landing_complete(table: Table, missing: list[str], empty: list[str]) -> dg.AssetCheckResult:
    problems = [f"{len(missing)} expected file(s) not landed"] if missing else []
    problems += [f"{len(empty)} file(s) landed without a row"] if empty else []
    return dg.AssetCheckResult(
        check_name=LANDING_COMPLETE.name,
        asset_key=table.key,
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(problems) or "every file landed, none empty",
        metadata={
            "missing_files": dg.MetadataValue.json(missing[:100]),
            "missing_count": len(missing),
            "empty_files": dg.MetadataValue.json(empty[:100]),
        },
    )
