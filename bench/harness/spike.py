"""The W4 spike: lag through the spike, recovery time, and the plot (SVG by hand).

Input is `loadgen send --json`'s `per_second` series: for each second of the run the
events the schedule made due (`offered`, dropped ones included) and the events whose
batch was accepted (`acknowledged`). Lag at the end of second s is the cumulative
offered minus the cumulative acknowledged: events due but not yet durably accepted.
In seconds it is that backlog divided by the nominal rate R (how long the steady
load takes to bring that many events).

The spike profile is R for 60 s, 10 R for 30 s, R for 60 s; `--duration D` scales all
three phases by D / 150 s, so the spike ends at 0.6 D.
"""

from xml.sax.saxutils import escape

# Phases of W4 in seconds, unscaled: steady, spike, steady.
SPIKE_PHASES_S = (60.0, 30.0, 60.0)


def spike_window(duration_s):
    """(start, end) of the 10 R phase, in seconds from the start of a run of `duration_s`."""
    scale = duration_s / sum(SPIKE_PHASES_S)
    start = SPIKE_PHASES_S[0] * scale
    return start, start + SPIKE_PHASES_S[1] * scale


def lag_series(per_second):
    """Lag in events at the end of each second: cumulative offered − cumulative acknowledged."""
    offered = acknowledged = 0
    lags = []
    for second in per_second:
        offered += second["offered"]
        acknowledged += second["acknowledged"]
        lags.append(max(0, offered - acknowledged))
    return lags


def recovery(per_second, rate, duration_s, threshold_s=5.0):
    """How the lag behaved around the spike.

    Returns a dict: `spike_start_s`, `spike_end_s`, `max_lag_events`, `max_lag_s` (at R),
    `lag_at_spike_end_s`, and `recovered_after_s`: seconds after the spike ended until the
    lag was back under `threshold_s` and stayed there for the rest of the series (None
    if it never was).
    """
    start, end = spike_window(duration_s)
    lags = lag_series(per_second)
    lag_s = [lag / rate for lag in lags] if rate > 0 else [0.0 for _ in lags]
    # Sample i is the lag at time i + 1. Recovery is at the first sample under the
    # threshold after the last one over it.
    over = [i for i, value in enumerate(lag_s) if value >= threshold_s]
    if not over:
        recovered_after = 0.0
    elif over[-1] == len(lag_s) - 1:
        recovered_after = None
    else:
        recovered_after = max(0.0, over[-1] + 2 - end)
    end_index = min(len(lags) - 1, max(0, int(end) - 1)) if lags else None
    return {
        "spike_start_s": round(start, 1),
        "spike_end_s": round(end, 1),
        "threshold_s": threshold_s,
        "max_lag_events": max(lags) if lags else 0,
        "max_lag_s": round(max(lag_s), 2) if lag_s else 0.0,
        "lag_at_spike_end_s": round(lag_s[end_index], 2) if end_index is not None else None,
        "recovered_after_s": None if recovered_after is None else round(recovered_after, 1),
    }


def _polyline(points, color, width=2.0, dash=None):
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<polyline fill="none" stroke="{color}" stroke-width="{width}"{extra} '
        f'points="{coords}"/>'
    )


def _nice_max(value):
    """A round axis maximum at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _format_rate(value):
    if value >= 1e6:
        return f"{value / 1e6:g} M"
    if value >= 1e3:
        return f"{value / 1e3:g} k"
    return f"{value:g}"


def render_svg(per_second, rate, duration_s, title, threshold_s=5.0):
    """The spike plot: offered and achieved events/s per second (top) and lag (bottom)."""
    width, height = 860, 560
    left, right = 80, 30
    plot_w = width - left - right
    top_box = (50, 260)  # y of the top panel: top, bottom
    low_box = (330, 500)
    seconds = max(len(per_second), 1)
    start, end = spike_window(duration_s)
    lags = lag_series(per_second)
    lag_s = [lag / rate if rate > 0 else 0.0 for lag in lags]

    def x_at(t):
        return left + plot_w * t / seconds

    rate_max = _nice_max(max([s["offered"] for s in per_second] + [s["acknowledged"] for s in per_second] + [1]))
    lag_max = _nice_max(max(lag_s + [threshold_s * 1.2]))

    def y_rate(v):
        return top_box[1] - (top_box[1] - top_box[0]) * v / rate_max

    def y_lag(v):
        return low_box[1] - (low_box[1] - low_box[0]) * v / lag_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    # Spike window, shaded in both panels.
    for box in (top_box, low_box):
        out.append(
            f'<rect x="{x_at(start):.1f}" y="{box[0]}" width="{x_at(end) - x_at(start):.1f}" '
            f'height="{box[1] - box[0]}" fill="#f4e3c1" opacity="0.6"/>'
        )
    # Axes, grid and tick labels.
    for box, vmax, fmt, label in (
        (top_box, rate_max, _format_rate, "events/s"),
        (low_box, lag_max, lambda v: f"{v:g} s", "lag (s at R)"),
    ):
        for i in range(5):
            v = vmax * i / 4
            y = box[1] - (box[1] - box[0]) * i / 4
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(v))}</text>')
        out.append(
            f'<rect x="{left}" y="{box[0]}" width="{plot_w}" height="{box[1] - box[0]}" '
            'fill="none" stroke="#444"/>'
        )
        mid = (box[0] + box[1]) / 2
        out.append(
            f'<text x="16" y="{mid:.1f}" transform="rotate(-90 16 {mid:.1f})" '
            f'text-anchor="middle">{label}</text>'
        )
    step = max(1, round(seconds / 10 / 5) * 5) if seconds > 20 else max(1, seconds // 10)
    for t in range(0, seconds + 1, step):
        x = x_at(t)
        for box in (top_box, low_box):
            out.append(f'<line x1="{x:.1f}" y1="{box[1]}" x2="{x:.1f}" y2="{box[1] + 4}" stroke="#444"/>')
        out.append(f'<text x="{x:.1f}" y="{low_box[1] + 18}" text-anchor="middle">{t}</text>')
    out.append(
        f'<text x="{left + plot_w / 2}" y="{low_box[1] + 38}" text-anchor="middle">'
        "seconds from the start of the run</text>"
    )
    # Series: values of second i drawn over [i, i + 1) as steps.
    def steps(values, y_of):
        points = []
        for i, v in enumerate(values):
            points.append((x_at(i), y_of(v)))
            points.append((x_at(i + 1), y_of(v)))
        return points

    out.append(_polyline(steps([s["offered"] for s in per_second], y_rate), "#1f77b4"))
    out.append(_polyline(steps([s["acknowledged"] for s in per_second], y_rate), "#d62728", 1.5))
    out.append(
        _polyline([(x_at(i + 1), y_lag(v)) for i, v in enumerate(lag_s)], "#2ca02c")
    )
    out.append(
        _polyline([(left, y_lag(threshold_s)), (left + plot_w, y_lag(threshold_s))], "#888", 1.0, "5,4")
    )
    out.append(
        f'<text x="{left + plot_w - 4}" y="{y_lag(threshold_s) - 4:.1f}" text-anchor="end" '
        f'fill="#666">{threshold_s:g} s</text>'
    )
    # Legend.
    legend = (
        ("#1f77b4", "offered (events due)"),
        ("#d62728", "achieved (events acknowledged)"),
        ("#2ca02c", f"lag: backlog ÷ R (R = {_format_rate(rate)} events/s)"),
        ("#f4e3c1", "spike (10 R)"),
    )
    for i, (color, text) in enumerate(legend):
        x = left + (i % 2) * plot_w / 2
        y = top_box[1] + 22 + (i // 2) * 18
        out.append(f'<rect x="{x:.1f}" y="{y}" width="14" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 18:.1f}" y="{y + 9}">{escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
