"""The bronze layer: what arrived, untouched but for lineage columns, as Delta tables."""
