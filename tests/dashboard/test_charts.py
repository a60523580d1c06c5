"""The server-side SVG line charts: axes that cover the data, a point per value, text escaped."""

from __future__ import annotations

import math
import re

from recommender.dashboard.charts import Series, line_chart, nice_ticks, time_ticks


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0.31, 0.69) == [0.3, 0.4, 0.5, 0.6, 0.7]
    assert nice_ticks(1, 6) == [1, 2, 3, 4, 5, 6]
    assert nice_ticks(0, 1234)[0] <= 0 and nice_ticks(0, 1234)[-1] >= 1234
    one = nice_ticks(5, 5)  # one value: room either side
    assert one[0] < 5 < one[-1] and 5.0 in one
    assert time_ticks(100.0, 100.0) == [-3500.0, -1700.0, 100.0, 1900.0, 3700.0]


def test_a_chart_has_a_line_and_a_point_per_value_inside_its_frame():
    chart = line_chart(
        "Loss", [Series("train", [(1, 0.7), (2, 0.5), (3, 0.4)]), Series("valid", [(1, 0.8)])],
        "epoch", "loss",
    )  # fmt: skip
    assert chart.count("<polyline") == 2 and chart.count('<circle class="point"') == 4
    xs = [float(x) for x in re.findall(r'cx="([\d.]+)"', chart)]
    ys = [float(y) for y in re.findall(r'cy="([\d.]+)"', chart)]
    assert all(0 < x < 640 for x in xs) and all(0 < y < 240 for y in ys)
    # Lower values are drawn lower (SVG y grows downwards).
    train = dict(zip(xs[:3], ys[:3], strict=True))
    assert train[min(train)] < train[max(train)]
    assert "<title>train: 3, 0.4</title>" in chart


def test_text_is_escaped_and_missing_values_are_left_out():
    chart = line_chart("<b>t</b>", [Series("<i>", [(0, 1.0), (1, math.nan), (2, 2.0)])], "x", "y")
    assert "<b>" not in chart and "&lt;b&gt;t&lt;/b&gt;" in chart
    assert "<i>" not in chart and "&lt;i&gt;" in chart
    assert chart.count('<circle class="point"') == 2
    assert line_chart("empty", [Series("s", [])], "x", "y") == ""
