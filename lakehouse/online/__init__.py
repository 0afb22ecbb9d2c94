"""The live path: the event feed, the online store and its stream worker, and the scoring service, all on
Redis (``lakehouse.lib.live`` holds the pure part they share with the batch path)."""
