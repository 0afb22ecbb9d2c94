"""The gold layer: DuckDB marts that answer business questions, and the model's feature table."""
