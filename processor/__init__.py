"""Vote processor: a drain-and-exit batch Job from the Redis Stream into PostgreSQL."""
