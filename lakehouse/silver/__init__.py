"""The silver layer: typed, cleaned, de-duplicated Delta tables, and the quarantine of rejected rows."""
