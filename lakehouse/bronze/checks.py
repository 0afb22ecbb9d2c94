"""Checks on what landed: is every day's file there, and is the feed still arriving."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from lakehouse.lib.files import LandedFile

# A daily feed that has not delivered for longer than a day and a bit has stalled.
MAX_LANDING_AGE = timedelta(hours=26)


def landing_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "landing_complete",
            asset=asset_key,
            description="Every day of the run has a landing file with rows (a missing day loads empty).",
        ),
        dg.AssetCheckSpec(
            "landing_fresh",
            asset=asset_key,
            description=f"The newest landing file arrived within {MAX_LANDING_AGE}.",
        ),
    ]


def landing_complete(asset_key: dg.AssetKey, missing: list[str], empty: list[str]) -> dg.AssetCheckResult:
    problems = [f"{len(missing)} expected file(s) not landed"] if missing else []
    problems += [f"{len(empty)} file(s) landed without a row"] if empty else []
    return dg.AssetCheckResult(
        check_name="landing_complete",
        asset_key=asset_key,
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(problems) or "every file landed, none empty",
        metadata={
            "missing_files": dg.MetadataValue.json(missing[:100]),
            "missing_count": len(missing),
            "empty_files": dg.MetadataValue.json(empty[:100]),
        },
    )


def landing_fresh(asset_key: dg.AssetKey, files: list[LandedFile], now: datetime) -> dg.AssetCheckResult:
    if not files:
        return dg.AssetCheckResult(
            check_name="landing_fresh",
            asset_key=asset_key,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description="nothing has landed",
        )
    newest = max(files, key=lambda f: f.modified_at)
    age = now - newest.modified_at
    return dg.AssetCheckResult(
        check_name="landing_fresh",
        asset_key=asset_key,
        passed=age <= MAX_LANDING_AGE,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"newest file {newest.path} landed {age} ago",
        metadata={
            "newest_file": newest.path,
            "landed_at": newest.modified_at.isoformat(),
            "age_hours": round(age.total_seconds() / 3600, 2),
            "files_landed": len(files),
        },
    )
