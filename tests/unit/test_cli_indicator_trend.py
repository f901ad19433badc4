"""``skyfleet indicators`` draws each series' shape as a sparkline of block characters (lowest ▁, highest
█), at most 16 wide however many points the range holds; the JSON output keeps the raw points."""

from __future__ import annotations

from skyfleet.cli.indicators import BLOCKS, SPARK_WIDTH, spark, summarize


def test_the_trend_runs_from_the_lowest_to_the_highest_block() -> None:
    assert spark([10.0, 20.0, 30.0, 40.0]) == "▁▃▆█"
    assert spark([5.0, 1.0, 5.0]) == "█▁█"
    assert spark([7.0, 7.0, 7.0]) == "▄▄▄", "a flat series sits in the middle"
    assert spark([]) == ""


def test_a_long_series_is_averaged_to_the_width() -> None:
    rising = [float(n) for n in range(288)]  # a day at 5 minutes
    line = spark(rising)
    assert len(line) == SPARK_WIDTH and line[0] == BLOCKS[0] and line[-1] == BLOCKS[-1]
    assert list(line) == sorted(line, key=BLOCKS.index), "a rising series never falls"
    spike = [1.0] * 100 + [50.0] + [1.0] * 99
    assert spark(spike).count("▁") == SPARK_WIDTH - 1, "one run holds the spike"


def test_a_row_of_the_table_has_the_trend() -> None:
    row = summarize({"site": "paris-1", "name": "api.compute.latency_ms", "unit": "ms",
                     "points": [["2026-01-01T00:00:00Z", 12.0], ["2026-01-01T00:05:00Z", 48.0]]})
    assert row["trend"] == "▁█" and row["latest"] == 48.0 and row["points"] == 2
