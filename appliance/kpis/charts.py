"""Server-rendered SVG charts for the KPI dashboard: no script, no library, no CDN.

Each chart is an inline <svg> with a viewBox, so it scales to a phone's width; colours
and type come from vitrine.css classes (the CSP allows no inline style). Labels are
escaped. Every chart has a <title> for screen readers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

W, H = 400, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 12, 26


def _frame(title: str, body: list[str], height: int = H) -> Markup:
    inner = "".join(body)
    # Every text that reaches the markup went through escape() above.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" '
        f'preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>{inner}</svg>'
    )


def _axes(top: float, x_labels: Sequence[str], fmt: Callable[[float], str]) -> list[str]:
    plot_h = H - TOP - BOTTOM
    out = [
        f'<line class="chart-axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{W - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<text class="chart-label" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">'
        f"{escape(fmt(top))}</text>",
        f'<text class="chart-label" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    n = len(x_labels)
    if n:
        step = max(1, -(-n // 5))
        for i in range(0, n, step):
            x = LEFT + (i + 0.5) * (W - LEFT - RIGHT) / n
            out.append(
                f'<text class="chart-label" x="{x:.1f}" y="{H - 8}" text-anchor="middle">'
                f"{escape(x_labels[i])}</text>"
            )
    return out


def area(
    title: str,
    values: Sequence[float],
    x_labels: Sequence[str],
    fmt: Callable[[float], str] = lambda v: f"{v:.0f}",
) -> Markup:
    """One series over time, as a filled line."""
    top = max([*values, 1])
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(len(values), 1)
    points = [
        (LEFT + (i + 0.5) * plot_w / n, TOP + plot_h - v / top * plot_h)
        for i, v in enumerate(values)
    ]
    body = _axes(top, x_labels, fmt)
    if points:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        base = TOP + plot_h
        body.append(
            f'<polygon class="chart-area" points="{points[0][0]:.1f},{base} {line} '
            f'{points[-1][0]:.1f},{base}"/>'
        )
        body.append(f'<polyline class="chart-line" points="{line}"/>')
    return _frame(title, body)


def bars(
    title: str,
    series: Sequence[tuple[str, Sequence[float]]],
    x_labels: Sequence[str],
    fmt: Callable[[float], str] = lambda v: f"{v:.0f}",
) -> Markup:
    """Several series side by side in each bucket; the nth series gets class chart-bar-n."""
    n = max((len(v) for _, v in series), default=0)
    top = max([1.0, *(x for _, v in series for x in v)])
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / max(n, 1)
    width = max(slot * 0.8 / max(len(series), 1), 1.0)
    body = _axes(top, x_labels, fmt)
    for s, (name, values) in enumerate(series):
        for i, v in enumerate(values):
            if v <= 0:
                continue
            h = v / top * plot_h
            x = LEFT + i * slot + slot * 0.1 + s * width
            body.append(
                f'<rect class="chart-bar-{s}" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" '
                f'width="{width:.1f}" height="{h:.1f}"><title>{escape(name)}: '
                f"{escape(fmt(v))}</title></rect>"
            )
    return _frame(title, body)


def hbars(
    title: str, rows: Sequence[tuple[str, float]], fmt: Callable[[float], str] = str
) -> Markup:
    """Labelled horizontal bars, longest first as given: a funnel, channels, devices."""
    row_h = 30
    height = max(len(rows), 1) * row_h + 8
    top = max([1.0, *(v for _, v in rows)])
    label_w, value_w = 118, 64
    bar_w = W - label_w - value_w - 16
    body = []
    for i, (label, value) in enumerate(rows):
        y = 4 + i * row_h
        w = value / top * bar_w
        body.append(
            f'<text class="chart-label" x="{label_w - 8}" y="{y + 19}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect class="chart-bar-0" x="{label_w}" y="{y + 6}" width="{w:.1f}" height="18"/>'
            f'<text class="chart-value" x="{label_w + w + 6:.1f}" y="{y + 19}">'
            f"{escape(fmt(value))}</text>"
        )
    return _frame(title, body, height)
