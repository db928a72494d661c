"""Charts for the reports page, drawn on the server as inline SVG: no chart library, no script,
nothing from another host.

Each function takes plain rows and returns `Markup` holding one `<svg>`:

- `funnel`: lead → approved → closed, each step with its count and rates;
- `horizontal_bars`: one labelled bar per row (loss reasons);
- `stage_spans`: per stage a bar to the p90 with the median marked (time in stage);
- `month_columns`: one column per month (sales by month).

What every chart holds to:

- **Accessible.** `role="img"` named by its `<title>` and `<desc>`; every bar carries its words
  and value as text, so nothing is told by colour alone. The page shows the same numbers as a
  table beside the chart.
- **Readable on a phone.** A `viewBox` a phone's width can hold at `width="100%"`; labels sit
  above their bars (they get the whole width) and long ones are shortened in the drawing (the
  table has them whole).
- **Safe.** Every label is escaped: a loss reason is typed by a person and may hold markup.
- **Our colours.** Shapes carry classes the stylesheet colours from its variables
  (jobline.css's `.chart` rules); the `fill` they also carry is the same variable's value read
  from the stylesheet, so a drawing seen without it (a saved file, a test) keeps its colours.
- **Empty is a state.** No rows (or a funnel with no leads) draws "No data" in the frame,
  never an empty or broken chart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from markupsafe import Markup, escape

STYLESHEET = Path(__file__).parent / "static" / "jobline.css"

# The drawing's own units. 360 wide is about what a phone's panel holds (330 CSS pixels), so
# text stays about 12 px tall there; on a desktop the stylesheet caps the chart's width.
WIDTH = 360
FONT = 13
SMALL_FONT = 12
# A rough width of one character of the system sans-serif, to shorten labels that would not fit.
CHAR_WIDTH = 0.58
NO_DATA = "No data for these filters"


@cache
def palette() -> dict[str, str]:
    """The stylesheet's `:root` colour variables (`{"brand": "#1d3a5f", ...}`)."""
    css = STYLESHEET.read_text(encoding="utf-8")
    root = re.search(r":root\s*\{([^}]*)\}", css)
    found = re.findall(r"--([a-z-]+)\s*:\s*([^;]+);", root.group(1) if root else "")
    return {name: value.strip() for name, value in found}


def _fill(variable: str) -> str:
    return palette().get(variable, "#000")


@dataclass(frozen=True)
class Bar:
    """One bar: its label, the number that sets its length, and that number as people read it
    (`"$1,234.00"`, `"12 jobs"`)."""

    label: str
    value: float
    text: str


@dataclass(frozen=True)
class FunnelStep:
    label: str
    count: int


@dataclass(frozen=True)
class Span:
    """A stage's time: the median and the 90th percentile (any one unit), and how each reads."""

    label: str
    median: float
    p90: float
    median_text: str
    p90_text: str


@dataclass(frozen=True)
class Column:
    """One month's column: its label under it (`"Jan 2026"`), its value, the value in full for
    its title, and a short form for above the column (`"$12.3k"`)."""

    label: str
    value: float
    text: str
    short: str


def compact(value: float, prefix: str = "") -> str:
    """A number short enough to sit above a narrow column: `950`, `12.3k`, `1.2M` (with a
    currency symbol as `prefix`)."""
    sign = "-" if value < 0 else ""
    size = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            scaled = size / limit
            number = f"{scaled:.1f}".removesuffix(".0") if scaled < 100 else f"{scaled:.0f}"
            return f"{sign}{prefix}{number}{suffix}"
    return f"{sign}{prefix}{size:.0f}"


def percent(part: float, whole: float) -> str:
    """`38%`; a share of nothing is `n/a`, not a division by zero."""
    if whole <= 0:
        return "n/a"
    return f"{round(100 * part / whole)}%"


def fit(text: str, room: float, font: float = FONT) -> str:
    """`text` shortened with an ellipsis to about `room` units at `font` size."""
    most = max(4, int(room / (font * CHAR_WIDTH)))
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _num(value: float) -> str:
    """A coordinate: short, and never `nan`/`inf` in the drawing."""
    if not math.isfinite(value):
        value = 0.0
    return f"{value:.1f}".removesuffix(".0")


def _length(value: float, most: float, room: float) -> float:
    """A bar's length: in proportion to the largest, never negative, never past its room."""
    if most <= 0 or not math.isfinite(value) or value <= 0:
        return 0.0
    return min(room, room * value / most)


def _frame(chart_id: str, title: str, desc: str, height: float, body: list[str]) -> Markup:
    """The `<svg>` around a chart: named by its title and description, scaled to its box."""
    cid = escape(chart_id)
    head = (
        f'<svg class="chart" id="{cid}" role="img" aria-labelledby="{cid}-title {cid}-desc" '
        f'viewBox="0 0 {WIDTH} {_num(height)}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{cid}-title">{escape(title)}</title>'
        f'<desc id="{cid}-desc">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _text(x: float, y: float, words: str, *, size: int = FONT, css: str = "chart-text",
          anchor: str = "start", bold: bool = False) -> str:  # fmt: skip
    weight = ' font-weight="700"' if bold else ""
    return (
        f'<text class="{css}" x="{_num(x)}" y="{_num(y)}" font-size="{size}" '
        f'text-anchor="{anchor}" fill="{_fill("ink")}"{weight}>{escape(words)}</text>'
    )


def _rect(x: float, y: float, width: float, height: float, css: str, fill: str, *,
          stroke: str | None = None, label: str = "") -> str:  # fmt: skip
    outline = f' stroke="{_fill(stroke)}" stroke-width="1.5"' if stroke else ""
    tip = f"<title>{escape(label)}</title>" if label else ""
    return (
        f'<rect class="{css}" x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" '
        f'height="{_num(height)}" fill="{_fill(fill)}"{outline}>{tip}</rect>'
    )


def no_data(chart_id: str, title: str, message: str = NO_DATA) -> Markup:
    """The empty state: the chart's frame with a sentence in it."""
    body = [
        f'<rect class="chart-empty" x="1" y="1" width="{WIDTH - 2}" height="58" '
        f'fill="{_fill("paper")}" stroke="{_fill("line")}" stroke-dasharray="4 3"/>',
        _text(WIDTH / 2, 35, message, anchor="middle", css="chart-text chart-empty-text"),
    ]
    return _frame(chart_id, title, f"{title}: {message}.", 60, body)


# --- The charts -------------------------------------------------------------------------------

ROW_LABEL = 17  # a row's label line, above its bar
BAR = 18  # a bar's thickness
ROW_GAP = 12


def _text_width(words: str, font: float = FONT) -> float:
    return len(words) * font * CHAR_WIDTH


def horizontal_bars(
    chart_id: str, title: str, bars: Sequence[Bar], *, summary: str = "", colour: str = "brand"
) -> Markup:
    """One bar per row, longest for the largest value, each with its label above it and its
    value at its end (loss reasons)."""
    if not bars:
        return no_data(chart_id, title)
    most = max(bar.value for bar in bars)
    # The longest bar leaves room at its end for the longest value (at most 60% of the width).
    room = max(WIDTH * 0.4, WIDTH - 6 - max(_text_width(bar.text) for bar in bars))
    body: list[str] = []
    y = 0.0
    for bar in bars:
        length = _length(bar.value, most, room)
        body.append('<g class="chart-row">')
        body.append(_text(0, y + FONT, fit(bar.label, WIDTH)))
        top = y + ROW_LABEL + 2
        body.append(
            _rect(0, top, length, BAR, f"chart-bar chart-{colour}", colour,
                  label=f"{bar.label}: {bar.text}")
        )  # fmt: skip
        body.append(_text(length + 6, top + BAR - 5, bar.text, css="chart-text chart-value"))
        body.append("</g>")
        y = top + BAR + ROW_GAP
    desc = summary or "; ".join(f"{bar.label}: {bar.text}" for bar in bars)
    return _frame(chart_id, title, desc, y, body)


def funnel(chart_id: str, title: str, steps: Sequence[FunnelStep]) -> Markup:
    """The funnel: one centred bar per step, as wide as its count is of the first step's, with
    the count, the share of the first step, and the share of the step before."""
    if not steps or steps[0].count <= 0:
        return no_data(chart_id, title)
    first = steps[0]
    most = max(step.count for step in steps)
    body: list[str] = []
    sentences: list[str] = []
    y = 0.0
    bar_height = 26
    for index, step in enumerate(steps):
        length = _length(step.count, most, WIDTH)
        if index == 0:
            rate = f"{step.count:,}"
            sentence = f"{step.label}: {step.count:,}"
        else:
            before = steps[index - 1]
            of_first = percent(step.count, first.count)
            of_before = percent(step.count, before.count)
            rate = f"{step.count:,} · {of_first} of {first.label.lower()}"
            if index > 1:
                rate += f" · {of_before} of {before.label.lower()}"
            sentence = (
                f"{step.label}: {step.count:,}, {of_first} of {first.label.lower()}, "
                f"{of_before} of {before.label.lower()}"
            )
        sentences.append(sentence)
        body.append('<g class="chart-row">')
        body.append(_text(0, y + FONT, step.label, bold=True))
        rate_room = WIDTH - _text_width(step.label) - 12  # beside the step's name
        body.append(_text(WIDTH, y + FONT, fit(rate, rate_room), anchor="end"))
        top = y + ROW_LABEL + 2
        body.append(
            _rect((WIDTH - length) / 2, top, length, bar_height, "chart-bar chart-brand",
                  "brand", label=sentence)
        )  # fmt: skip
        body.append("</g>")
        y = top + bar_height + ROW_GAP
    return _frame(chart_id, title, "; ".join(sentences) + ".", y, body)


def stage_spans(chart_id: str, title: str, spans: Sequence[Span]) -> Markup:
    """Time in stage: per stage an outlined bar to the 90th percentile and a solid bar to the
    median inside it, each end marked and both values written under the label."""
    if not spans:
        return no_data(chart_id, title)
    most = max(max(span.p90, span.median) for span in spans)
    room = WIDTH - 8
    body: list[str] = []
    y = 0.0
    for span in spans:
        to_p90 = _length(span.p90, most, room)
        to_median = _length(span.median, most, room)
        words = f"median {span.median_text} · p90 {span.p90_text}"
        body.append('<g class="chart-row">')
        label_room = max(WIDTH * 0.25, WIDTH - _text_width(words) - 12)  # beside the values
        body.append(_text(0, y + FONT, fit(span.label, label_room), bold=True))
        body.append(_text(WIDTH, y + FONT, words, anchor="end"))
        top = y + ROW_LABEL + 2
        body.append(
            _rect(0, top, to_p90, BAR, "chart-range", "paper", stroke="brand",
                  label=f"{span.label}: 90% of jobs within {span.p90_text}")
        )  # fmt: skip
        body.append(
            _rect(0, top + 4, to_median, BAR - 8, "chart-bar chart-brand", "brand",
                  label=f"{span.label}: half of jobs within {span.median_text}")
        )  # fmt: skip
        for x, mark in ((to_median, "median"), (to_p90, "p90")):
            body.append(
                f'<line class="chart-mark chart-mark-{mark}" x1="{_num(x)}" x2="{_num(x)}" '
                f'y1="{_num(top - 3)}" y2="{_num(top + BAR + 3)}" stroke="{_fill("ink")}" '
                f'stroke-width="2"/>'
            )
        body.append("</g>")
        y = top + BAR + ROW_GAP
    desc = "; ".join(
        f"{span.label}: median {span.median_text}, 90th percentile {span.p90_text}"
        for span in spans
    )
    return _frame(chart_id, title, desc + ".", y, body)


def month_columns(chart_id: str, title: str, columns: Sequence[Column]) -> Markup:
    """One column per month, tallest for the largest value, its month under it; its value
    above it while the columns are wide enough for the words, else the tallest one's only (the
    table beside always has them all)."""
    if not columns:
        return no_data(chart_id, title)
    most = max(column.value for column in columns)
    plot_top, plot_height = 18.0, 150.0
    baseline = plot_top + plot_height
    slot = WIDTH / len(columns)
    width = max(2.0, slot * 0.7)
    show_values = slot >= 40
    tallest = max(range(len(columns)), key=lambda i: columns[i].value)
    # Month labels: all when they fit, else every n-th, counted back from the latest month.
    every = max(1, math.ceil(44 / slot))
    body: list[str] = [
        f'<line class="chart-axis" x1="0" x2="{WIDTH}" y1="{_num(baseline)}" '
        f'y2="{_num(baseline)}" stroke="{_fill("muted")}" stroke-width="1"/>'
    ]
    for index, column in enumerate(columns):
        height = _length(column.value, most, plot_height)
        x = index * slot + (slot - width) / 2
        middle = index * slot + slot / 2
        body.append('<g class="chart-row">')
        body.append(
            _rect(x, baseline - height, width, height, "chart-bar chart-go", "go",
                  label=f"{column.label}: {column.text}")
        )  # fmt: skip
        # Too narrow for every value: the tallest still says what the scale reaches.
        if show_values or index == tallest:
            half = _text_width(column.short, SMALL_FONT) / 2
            at = min(max(middle, half), WIDTH - half)
            body.append(
                _text(at, baseline - height - 4, column.short, size=SMALL_FONT,
                      anchor="middle", css="chart-text chart-value")
            )  # fmt: skip
        if (len(columns) - 1 - index) % every == 0:
            month, _, year = column.label.partition(" ")
            body.append(_text(middle, baseline + 15, month, size=SMALL_FONT, anchor="middle"))
            if year:
                body.append(
                    _text(middle, baseline + 28, year, size=SMALL_FONT, anchor="middle",
                          css="chart-text chart-year")
                )  # fmt: skip
        body.append("</g>")
    desc = "; ".join(f"{column.label}: {column.text}" for column in columns)
    return _frame(chart_id, title, desc + ".", baseline + 32, body)
