"""The request journal: one record per answered request, written to Redis Streams."""
