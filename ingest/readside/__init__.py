"""The read side of the ingest service: results, a vote's status, the live results stream and
the voting page. It reads PostgreSQL (what the processor recorded) and the stream (what is
still pending); it never writes either."""
