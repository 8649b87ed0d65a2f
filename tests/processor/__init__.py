"""Tests of the processor Job against the real Redis and PostgreSQL."""
