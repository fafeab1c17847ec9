"""The incident report as charts (PNG or SVG), drawn with matplotlib's object API (no pyplot:
no global figure state, safe in the web server's threads).

Each chart carries its data: the counts as JSON in the image's Description metadata (a PNG
tEXt chunk, the SVG's Dublin Core description), each bar's count printed at its end, and each
SVG bar grouped under the id `bar-<key>`, so a reader or a test can check what it shows."""

from __future__ import annotations

import io
import json

from matplotlib import rc_context
from matplotlib.figure import Figure

from .core.incident_reports import DIMENSIONS, IncidentReport
from .errors import InvalidInput

FORMATS = ("png", "svg")
TITLES = {"problem_types": "Incidents by HIT-CS problem type", "consequences": "Incidents by consequence",
          "workflow_steps": "Incidents by workflow step", "months": "Incidents by month of the event"}
_COLOUR, _NONE_COLOUR = "#2f6f9f", "#9a9a9a"  # the not-classified bar in grey


def chart_data(report: IncidentReport, chart: str) -> dict[str, object]:
    return {"chart": chart, "total": report.total, "counts": report.counts(chart)}


def render_chart(report: IncidentReport, chart: str, fmt: str) -> bytes:
    if chart not in DIMENSIONS:
        raise InvalidInput(f"chart must be one of {', '.join(DIMENSIONS)}, not {chart!r}")
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    bars = report.bars[chart]
    labels = [b.label for b in bars] or ["no incidents"]
    counts = [b.count for b in bars] or [0]
    colours = [_NONE_COLOUR if b.key == "" else _COLOUR for b in bars] or [_NONE_COLOUR]
    horizontal = chart != "months"
    height = max(3.0, 0.9 + 0.38 * len(labels)) if horizontal else 4.5
    # svg.fonttype none keeps text as <text> (searchable, smaller); a fixed hash salt and no
    # date make the same report give the same SVG bytes.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "twinpacs"}):
        fig = Figure(figsize=(9, height), layout="constrained")
        ax = fig.add_subplot()
        if horizontal:
            drawn = ax.barh(labels, counts, color=colours)
            ax.invert_yaxis()  # the taxonomy's first entry at the top
            ax.set_xlabel("incidents")
            ax.xaxis.get_major_locator().set_params(integer=True)
        else:
            drawn = ax.bar(labels, counts, color=colours)
            ax.set_ylabel("incidents")
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.tick_params(axis="x", labelrotation=45 if len(labels) > 6 else 0)
        for rect, bar in zip(drawn, bars):
            rect.set_gid(f"bar-{bar.key or 'none'}")
        ax.bar_label(drawn, padding=3)
        ax.margins(x=0.08) if horizontal else ax.margins(y=0.1)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(f"{TITLES[chart]} (n = {report.total})", loc="left")
        out = io.BytesIO()
        description = json.dumps(chart_data(report, chart), sort_keys=True)
        metadata = ({"Title": TITLES[chart], "Description": description, "Software": "twinpacs"} if fmt == "png"
                    else {"Title": TITLES[chart], "Description": description, "Date": None})
        fig.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()
