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
            description="Every day of the run has its landing file (a missing day is loaded as empty).",
        ),
        dg.AssetCheckSpec(
            "landing_fresh",
            asset=asset_key,
            description=f"The newest landing file arrived within {MAX_LANDING_AGE}.",
        ),
    ]


def landing_complete(asset_key: dg.AssetKey, missing: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name="landing_complete",
        asset_key=asset_key,
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(missing)} expected file(s) not landed" if missing else "every file landed",
        metadata={"missing_files": dg.MetadataValue.json(missing[:100]), "missing_count": len(missing)},
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
