"""Parsing wrk's output and writing its scripts (no wrk run: its output is fixed text)."""

from __future__ import annotations

import pytest

from loadtest import wrk

OUTPUT = """Running 10s test @ http://127.0.0.1:8000/vote
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.07ms    2.11ms  41.16ms   90.12%
    Req/Sec    12.79k     1.02k   14.29k    79.00%
  Latency Distribution
     50%  812.00us
     75%    5.73ms
     90%    6.84ms
     99%    1.02s
  127345 requests in 10.01s, 60.22MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  12721.81
Transfer/sec:      6.02MB
"""


def test_the_figures_of_a_run_are_read_with_their_units() -> None:
    figures = wrk.parse(OUTPUT)
    assert figures == wrk.WrkFigures(
        requests=127345, seconds=10.01, requests_per_s=12721.81, p50_ms=0.812, p99_ms=1020.0,
        non_2xx=7, socket_errors=5,
    )  # fmt: skip


def test_a_clean_run_has_no_errors_and_minutes_are_understood() -> None:
    clean = OUTPUT.replace("  Socket errors: connect 0, read 2, write 0, timeout 3\n", "")
    clean = clean.replace("  Non-2xx or 3xx responses: 7\n", "")
    figures = wrk.parse(clean.replace("in 10.01s", "in 1.00m"))
    assert (figures.non_2xx, figures.socket_errors, figures.seconds) == (0, 0, 60.0)


def test_output_without_figures_is_an_error_not_a_zero() -> None:
    with pytest.raises(wrk.WrkError, match="unexpected wrk output"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused")


def test_the_post_script_quotes_the_body_and_paces_only_when_asked() -> None:
    script = wrk.post_script(b'{"option": "cats", "note": "a\\\\b"}')
    assert 'wrk.body = "{\\"option\\": \\"cats\\", \\"note\\": \\"a\\\\\\\\b\\"}"' in script
    assert "delay" not in script
    assert "return 12.500" in wrk.post_script(b"{}", delay_ms=12.5)


def test_a_missing_wrk_is_an_error_naming_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(wrk.WrkError, match=r"install-packages\.sh wrk"):
        wrk.require_wrk()
