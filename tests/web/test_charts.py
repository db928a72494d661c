"""The reports' server-drawn charts (api/web/charts.py), read back as XML: the drawing is
well-formed, named for a screen reader, bars are in proportion to their values, every label is
there as text (escaped: a loss reason is typed by a person), and no data draws a "no data"
state rather than a broken chart."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from api.web import charts
from api.web.charts import Bar, Column, FunnelStep, Span

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    return ET.fromstring(str(markup))


def texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text")]


def bars(svg: ET.Element, css: str = "chart-bar") -> list[ET.Element]:
    return [r for r in svg.iter(f"{SVG}rect") if css in (r.get("class") or "").split()]


def width(rect: ET.Element) -> float:
    return float(rect.get("width") or 0)


def height(rect: ET.Element) -> float:
    return float(rect.get("height") or 0)


def assert_accessible(svg: ET.Element, chart_id: str) -> None:
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == f"{chart_id}-title {chart_id}-desc"
    assert svg.find(f"{SVG}title").get("id") == f"{chart_id}-title"
    assert svg.find(f"{SVG}desc").get("id") == f"{chart_id}-desc"
    # Scales to its box: a phone's width holds all of it.
    assert svg.get("width") == "100%"
    assert svg.get("viewBox", "").startswith(f"0 0 {charts.WIDTH} ")


def assert_proportional(lengths: list[float], values: list[float]) -> None:
    most = max(values)
    longest = max(lengths)
    assert longest > 0
    for length, value in zip(lengths, values, strict=True):
        assert length / longest == pytest.approx(value / most, abs=0.01)


def test_horizontal_bars_are_in_proportion_and_labelled() -> None:
    rows = [Bar("Price", 12, "12 jobs"), Bar("Timing", 6, "6 jobs"), Bar("Other", 3, "3 jobs")]
    svg = parse(charts.horizontal_bars("loss", "Loss reasons", rows))
    assert_accessible(svg, "loss")
    assert svg.find(f"{SVG}title").text == "Loss reasons"
    assert_proportional([width(b) for b in bars(svg)], [12, 6, 3])
    words = texts(svg)
    for label, value in [("Price", "12 jobs"), ("Timing", "6 jobs"), ("Other", "3 jobs")]:
        assert label in words and value in words
    # The description says it all in words too.
    assert "Price: 12 jobs" in svg.find(f"{SVG}desc").text
    # Each bar says what it is when pointed at.
    assert [b.find(f"{SVG}title").text for b in bars(svg)][0] == "Price: 12 jobs"


def test_labels_are_escaped() -> None:
    hostile = '<script>alert("x")</script> & <b>bold</b>'
    markup = charts.horizontal_bars("loss", "Why <we> lost", [Bar(hostile, 1, "1 job")])
    assert "<script>" not in str(markup) and "<b>" not in str(markup)
    svg = parse(markup)  # still well-formed XML
    assert svg.find(f"{SVG}title").text == "Why <we> lost"
    assert any(t.startswith('<script>alert("x")') for t in texts(svg))
    # Nothing but the drawing's own elements came out of the label.
    tags = {element.tag.removeprefix(SVG) for element in svg.iter()}
    assert tags <= {"svg", "title", "desc", "g", "rect", "text", "line"}
    # An id is escaped too (it ends up in attributes).
    odd_id = parse(charts.horizontal_bars('x"><i', "T", [Bar("a", 1, "1")]))
    assert odd_id.get("id") == 'x"><i'
    assert odd_id.find(f"{SVG}title").get("id") == 'x"><i-title'


def test_a_long_label_is_shortened_in_the_drawing_but_whole_in_its_title() -> None:
    long = "The customer said the price was far more than a competitor quoted " * 4
    svg = parse(charts.horizontal_bars("loss", "Loss reasons", [Bar(long, 2, "2 jobs")]))
    shown = texts(svg)[0]
    assert shown.endswith("…") and len(shown) < len(long)
    assert bars(svg)[0].find(f"{SVG}title").text == f"{long}: 2 jobs"


def test_empty_data_draws_a_no_data_state() -> None:
    for markup in (
        charts.horizontal_bars("a", "Loss reasons", []),
        charts.funnel("b", "Conversion", []),
        charts.funnel("c", "Conversion", [FunnelStep("Leads", 0), FunnelStep("Closed", 0)]),
        charts.stage_spans("d", "Time in stage", []),
        charts.month_columns("e", "Sales by month", []),
    ):
        svg = parse(markup)
        assert svg.get("role") == "img"
        assert charts.NO_DATA in texts(svg)
        assert charts.NO_DATA in svg.find(f"{SVG}desc").text
        assert bars(svg) == []


def test_zero_and_odd_values_draw_no_broken_bars() -> None:
    svg = parse(
        charts.horizontal_bars(
            "z",
            "Zeros",
            [Bar("None", 0, "0"), Bar("Refund", -5, "-$5.00"), Bar("Nan", float("nan"), "?")],
        )
    )
    assert [width(b) for b in bars(svg)] == [0, 0, 0]
    for element in svg.iter():
        if element is svg:  # its width is "100%"
            continue
        for name in ("x", "y", "width", "height", "x1", "x2", "y1", "y2"):
            if element.get(name) is not None:
                assert math.isfinite(float(element.get(name)))


def test_funnel_widths_and_rates() -> None:
    steps = [FunnelStep("Leads", 200), FunnelStep("Approved", 80), FunnelStep("Closed", 60)]
    svg = parse(charts.funnel("funnel", "Conversion", steps))
    assert_accessible(svg, "funnel")
    shapes = bars(svg)
    assert_proportional([width(b) for b in shapes], [200, 80, 60])
    # Centred: each bar's middle is the drawing's middle.
    for shape in shapes:
        assert float(shape.get("x")) + width(shape) / 2 == pytest.approx(charts.WIDTH / 2)
    words = " | ".join(texts(svg))
    assert "Leads" in words and "Approved" in words and "Closed" in words
    assert "80 · 40% of leads" in words
    assert "60 · 30% of leads · 75% of approved" in words
    desc = svg.find(f"{SVG}desc").text
    assert "Closed: 60, 30% of leads, 75% of approved" in desc


def test_stage_spans_mark_median_and_p90() -> None:
    spans = [
        Span("Quoted", 24, 96, "1.0 d", "4.0 d"),
        Span("Awaiting parts", 72, 240, "3.0 d", "10.0 d"),
    ]
    svg = parse(charts.stage_spans("time", "Time in stage", spans))
    assert_accessible(svg, "time")
    ranges = bars(svg, "chart-range")
    medians = bars(svg)
    assert_proportional([width(r) for r in ranges] + [width(m) for m in medians], [96, 240, 24, 72])
    # The marks stand at the bars' ends, and the values are written.
    marks = {m.get("class"): [] for m in svg.iter(f"{SVG}line")}
    for line in svg.iter(f"{SVG}line"):
        marks[line.get("class")].append(float(line.get("x1")))
    assert marks["chart-mark chart-mark-median"] == [width(m) for m in medians]
    assert marks["chart-mark chart-mark-p90"] == [width(r) for r in ranges]
    assert "median 3.0 d · p90 10.0 d" in texts(svg)
    assert "Awaiting parts" in texts(svg)


def test_month_columns_heights_labels_and_values() -> None:
    months = [
        Column("Jan 2026", 1000, "$1,000.00", "$1k"),
        Column("Feb 2026", 2500, "$2,500.00", "$2.5k"),
        Column("Mar 2026", 0, "$0.00", "$0"),
    ]
    svg = parse(charts.month_columns("sales", "Sales by month", months))
    assert_accessible(svg, "sales")
    shapes = bars(svg)
    assert_proportional([height(c) for c in shapes], [1000, 2500, 0])
    # Standing on one baseline.
    bottoms = {float(c.get("y")) + height(c) for c in shapes}
    assert len(bottoms) == 1
    words = texts(svg)
    assert {"Jan", "Feb", "Mar", "2026", "$1k", "$2.5k"} <= set(words)
    assert "Feb 2026: $2,500.00" in svg.find(f"{SVG}desc").text


def test_many_months_keep_every_column_but_thin_their_words() -> None:
    months = [Column(f"M{i} 2026", i + 1, f"{i + 1}", f"{i + 1}") for i in range(36)]
    svg = parse(charts.month_columns("sales", "Sales by month", months))
    assert len(bars(svg)) == 36
    month_words = [t for t in texts(svg) if t.startswith("M")]
    assert 0 < len(month_words) < 36  # every n-th month named, not 36 overlapping labels
    assert "M35" in month_words  # the latest month is always named
    # Values above columns only when they fit, and the tallest's always; in the desc all.
    values = [t for t in texts(svg) if t.isdigit() and t != "2026"]
    assert values == ["36"]
    assert "M35 2026: 36" in svg.find(f"{SVG}desc").text


def test_colours_come_from_the_stylesheet() -> None:
    css = charts.STYLESHEET.read_text()
    brand = charts.palette()["brand"]
    assert f"--brand: {brand};" in css
    svg = parse(charts.horizontal_bars("c", "Colours", [Bar("A", 1, "1")]))
    assert bars(svg)[0].get("fill") == brand


@pytest.mark.parametrize(
    ("value", "prefix", "expected"),
    [(950, "", "950"), (12_345, "$", "$12.3k"), (1_000, "$", "$1k"), (2_500_000, "", "2.5M"),
     (-1500, "$", "-$1.5k"), (150_000, "", "150k")],
)  # fmt: skip
def test_compact(value: float, prefix: str, expected: str) -> None:
    assert charts.compact(value, prefix) == expected


def test_percent_of_nothing_is_not_a_number() -> None:
    assert charts.percent(3, 0) == "n/a"
    assert charts.percent(1, 3) == "33%"
