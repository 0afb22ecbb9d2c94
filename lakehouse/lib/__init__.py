"""Pure data logic: Polars functions with no Dagster imports, shared by assets, scoring and tests."""
