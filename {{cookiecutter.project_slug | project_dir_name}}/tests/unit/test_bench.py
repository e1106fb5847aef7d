"""The serving benchmark reads wrk's figures right and words the comparison truthfully."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_serving.py"
_spec = importlib.util.spec_from_file_location("bench_serving", SCRIPT)
assert _spec is not None
assert _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)
p99_comparison, parse_wrk_output = bench.p99_comparison, bench.parse_wrk_output

WRK_OUTPUT = """Running 8s test @ http://127.0.0.1:8000/invocations
  2 threads and 8 connections
  Latency Distribution
     50%    2.10ms
     75%    3.00ms
     90%    4.20ms
     99%   12.50ms
  26544 requests in 8.00s, 4.20MB read
  Socket errors: connect 0, read 0, write 0, timeout 7
  Non-2xx or 3xx responses: 3
Requests/sec:   3318.00
"""


def test_refused_and_timed_out_requests_both_count_as_failures() -> None:
    result = parse_wrk_output(WRK_OUTPUT)
    assert result.non_2xx == 10
    assert (result.p50_ms, result.p99_ms, result.requests_per_second) == (2.1, 12.5, 3318.0)
    quiet = WRK_OUTPUT.replace("  Non-2xx or 3xx responses: 3\n", "")
    assert parse_wrk_output(quiet).non_2xx == 7


@pytest.mark.parametrize(
    ("ours", "peer", "words"),
    [(10.0, 40.0, "4.0x lower"), (40.0, 10.0, "4.0x higher"), (5.0, 5.0, "1.0x lower")],
)
def test_the_p99_comparison_says_which_way_it_goes(ours: float, peer: float, words: str) -> None:
    assert p99_comparison(ours, peer) == words
