"""Vote ingest service: POST /vote appends to a Redis Stream."""
