"""The checks of the silver tables: schema, keys and row conservation block; references warn."""

from __future__ import annotations

import dagster as dg

from lakehouse.quality import REFERENTIAL_INTEGRITY, ROW_CONSERVATION, SCHEMA, UNIQUE_KEYS


def check_specs(asset_key: dg.AssetKey, key_columns: list[str], references: bool) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            SCHEMA,
            asset=asset_key,
            blocking=True,
            description="Every written row matches the table's pandera model (types, ranges, nulls).",
        ),
        dg.AssetCheckSpec(
            UNIQUE_KEYS,
            asset=asset_key,
            blocking=True,
            description=f"No two rows share a key ({', '.join(key_columns)}).",
        ),
        dg.AssetCheckSpec(
            ROW_CONSERVATION,
            asset=asset_key,
            blocking=True,
            description="Per partition, bronze rows = silver rows + quarantined rows.",
        ),
    ]
    if references:
        specs.append(
            dg.AssetCheckSpec(
                REFERENTIAL_INTEGRITY,
                asset=asset_key,
                description="Codes point at known reference rows (warns with counts and examples).",
            )
        )
    return specs
