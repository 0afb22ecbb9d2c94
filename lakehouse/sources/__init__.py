"""The sources layer: the landing zone and operational database, and the replay that fills them."""
