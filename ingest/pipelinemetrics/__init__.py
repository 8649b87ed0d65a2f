"""Pipeline metrics on ingest's /metrics: what the stream, its consumer group and PostgreSQL
hold, for the processor Jobs that live too briefly to be scraped themselves (docs/monitoring.md).

Read when /metrics is scraped, never on `POST /vote`; at most once per max age however many
scrapers ask, every read bounded by a timeout: a slow Redis or PostgreSQL makes a scrape serve
the last readings with their age, never wait longer.
"""
