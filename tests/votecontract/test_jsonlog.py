from __future__ import annotations

import json
import logging

from votecontract.jsonlog import JsonFormatter


def test_json_formatter_emits_one_object_with_extra_fields() -> None:
    record = logging.LogRecord("x.y", logging.INFO, __file__, 1, "batch %d", (3,), None)
    record.entries = 5
    line = JsonFormatter().format(record)
    payload = json.loads(line)
    assert payload["msg"] == "batch 3"
    assert payload["level"] == "info"
    assert payload["logger"] == "x.y"
    assert payload["entries"] == 5
    assert "\n" not in line


def test_text_formatter_shows_extra_fields() -> None:
    from votecontract.jsonlog import TextFormatter

    record = logging.LogRecord("p", logging.ERROR, __file__, 1, "migration failed", (), None)
    record.error = "MigrationError('checksum')"
    line = TextFormatter().format(record)
    assert line.endswith("ERROR p migration failed error=MigrationError('checksum')")
