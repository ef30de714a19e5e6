"""The audit report: one self-contained HTML page of audit records (DESIGN §9).

Pure: :func:`render_report` turns records into the page's text; it reads only its
arguments and the page's own template files (``report/page.html``, ``report.css``,
``report.js``, package data), which it inlines. The page loads nothing: no network, no
CDN, no fonts, and its Content-Security-Policy forbids any fetch, so it works offline in
any current browser.

What is drawn in Python: the failures section (first), the per-day chart (inline SVG,
every bar with ``data-day``/``data-count`` and a ``<title>``), the per-policy totals.
What the page's script draws: the records table, from a JSON block, ``PAGE`` rows at a
time, so 50,000 records stay responsive (bench/bench_report.py measures it). The JSON is
escaped so that no record text can end the script block or become markup: ``<``, ``>``,
``&`` and U+2028/U+2029 are written as ``\\u`` escapes, which JSON reads back unchanged.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from datetime import datetime
from datetime import timedelta
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from smartvault.core.audit_summary import AuditSummary
from smartvault.core.audit_summary import DayCount
from smartvault.core.audit_summary import summarise
from smartvault.core.model import AuditRecord
from smartvault.core.model import PolicySet
from smartvault.core.times import iso_utc

#: the table's columns, in the order of each record's array in the JSON block
COLUMNS = (
    "time",
    "action",
    "outcome",
    "policy",
    "region",
    "resource",
    "recovery point",
    "snapshot ids",
    "reason / error",
    "actor",
    "run id",
)
#: the columns written as indexes into the page's string table (see ``_data``)
CODED = tuple(
    COLUMNS.index(c)
    for c in ("action", "outcome", "policy", "region", "reason / error", "actor", "run id")
)
#: failed records shown in the section at the top; the rest are in the table
ATTENTION_SHOWN = 500

_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def render_report(
    records: Iterable[AuditRecord],
    *,
    generated_at: datetime,
    since: timedelta,
    policies: PolicySet | None = None,
) -> str:
    """The report page of ``records`` (any order), written at ``generated_at`` (aware),
    covering the ``since`` before it. With ``policies``, each policy's RPO status is
    read against its schedule; without, it is "unknown".

    ``records`` are the ones to show, usually ``AuditLog.records.query(generated_at -
    since, generated_at)``: all are shown and counted, and the page's heading calls them
    the records of that window. Any caller (``audit report``, the demo) passes the same
    four things; nothing here reads the clock, AWS or the policy files."""
    rows = sorted(records, key=lambda r: r.timestamp, reverse=True)
    summary = summarise(rows, generated_at=generated_at, since=since, policies=policies)
    page, css, js = _template()
    return page.substitute(
        title=html.escape(iso_utc(generated_at)),
        meta=_meta(summary),
        css=css,
        js=js,
        attention=_attention(summary),
        chart=_chart(summary.days),
        policies=_policies(summary),
        headers="".join(f"<th scope=col>{html.escape(c)}</th>" for c in COLUMNS),
        data=embed_json(_data(rows)),
    )


def embed_json(value: object) -> str:
    """JSON that is safe inside ``<script type="application/json">``: nothing in it can
    close the element or be read as markup, and JSON.parse gives back ``value``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_JSON_ESCAPES)


@cache
def _template() -> tuple[Template, str, str]:
    folder = resources.files("smartvault.formats") / "report"
    page = Template((folder / "page.html").read_text(encoding="utf-8"))
    css = (folder / "report.css").read_text(encoding="utf-8")
    js = (folder / "report.js").read_text(encoding="utf-8")
    for name, text in (("report.css", css), ("report.js", js)):
        if "</script" in text.lower() or "</style" in text.lower():
            raise AssertionError(f"{name} must not contain </script or </style: it would end it")
    return page, css, js


def _region(r: AuditRecord) -> str:
    target = r.details.get("target_region")
    return f"{r.region}→{target}" if r.action == "copy" and target else r.region


def _data(rows: list[AuditRecord]) -> dict[str, object]:
    """``{"strings": [...], "coded": [...], "records": [[...], ...]}``: each record an array
    in :data:`COLUMNS` order; in the ``coded`` columns (few distinct values: action,
    outcome, policy, region, reason, actor, run id) an index into ``strings``, which keeps
    50,000 records' page a third smaller and quicker to parse."""
    strings: dict[str, int] = {}
    out: list[list[str | int]] = []
    for r in rows:
        row: list[str | int] = list(_row(r))
        for c in CODED:
            row[c] = strings.setdefault(str(row[c]), len(strings))
        out.append(row)
    return {"strings": list(strings), "coded": list(CODED), "records": out}


def decoded(data: dict[str, Any]) -> list[list[str]]:
    """The records of :func:`_data`'s JSON as text again (what the page's script does)."""
    strings, coded = data["strings"], set(data["coded"])
    return [[strings[v] if c in coded else v for c, v in enumerate(row)] for row in data["records"]]


def _row(r: AuditRecord) -> list[str]:
    return [
        iso_utc(r.timestamp),
        r.action,
        r.outcome,
        r.policy,
        _region(r),
        r.resource_id,
        r.recovery_point,
        " ".join(r.snapshot_ids),
        r.error or r.reason,
        r.actor,
        r.run_id,
    ]


def _meta(s: AuditSummary) -> str:
    return html.escape(
        f"{s.total} records from {iso_utc(s.since)} to {iso_utc(s.generated_at)} "
        f"(generated {iso_utc(s.generated_at)}; times in UTC)"
    )


def _attention(s: AuditSummary) -> str:
    if not s.attention:
        return (
            '<section id="attention" class="clear" data-count="0"><h2>Failures</h2>'
            "<p>No failed records, and no record left pending for over an hour.</p></section>"
        )
    shown = s.attention[:ATTENTION_SHOWN]
    head = "".join(f"<th>{c}</th>" for c in ("time", "outcome", "action", "policy", "region"))
    head += "<th>resource / recovery point</th><th>snapshot ids</th><th>error / reason</th>"
    head += "<th>run id</th>"
    body = "".join(
        "<tr>"
        f"<td>{_e(iso_utc(r.timestamp))}</td>"
        f'<td class="outcome-{_e(r.outcome)}">'
        f"{_e(r.outcome if r.outcome == 'failed' else 'pending (stale)')}</td>"
        f"<td>{_e(r.action)}</td><td>{_e(r.policy)}</td><td>{_e(_region(r))}</td>"
        f"<td>{_e(r.recovery_point or r.resource_id)}</td>"
        f'<td class="ids"><code>{_e(" ".join(r.snapshot_ids))}</code></td>'
        f"<td>{_e(r.error or r.reason)}</td><td><code>{_e(r.run_id)}</code></td>"
        "</tr>"
        for r in shown
    )
    rest = len(s.attention) - len(shown)
    more = f"<p>{rest} more: search the table below for <code>failed</code>.</p>" if rest else ""
    failed = sum(1 for r in s.attention if r.outcome == "failed")
    stale = len(s.attention) - failed
    words = f"{failed} failed"
    if stale:
        words += f", {stale} pending for over an hour (a run that crashed)"
    return (
        f'<section id="attention" data-count="{len(s.attention)}">'
        f"<h2>Failures: {_e(words)}</h2>"
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        f"</table></div>{more}</section>"
    )


def _policies(s: AuditSummary) -> str:
    if not s.policies:
        return "<p>No policies: no records in this window, and no policy files given.</p>"
    head = "<th>policy</th>" + "".join(
        f'<th class="num">{c}</th>' for c in ("records", "created", "deleted", "failed")
    )
    head += "<th>newest create</th><th>RPO</th>"
    body = "".join(
        f'<tr data-policy="{_e(p.policy)}">'
        f"<td>{_e(p.policy)}</td>"
        f'<td class="num">{p.records}</td><td class="num">{p.created}</td>'
        f'<td class="num">{p.deleted}</td><td class="num">{p.failed}</td>'
        f"<td>{_e(iso_utc(p.newest_created)) if p.newest_created else '—'}</td>"
        f'<td class="rpo-{p.rpo}" data-rpo="{p.rpo}">{p.rpo}: {_e(p.rpo_reason)}</td>'
        "</tr>"
        for p in s.policies
    )
    note = (
        "<p class=meta>RPO from the audit log: <strong>met</strong> when the policy's newest "
        "succeeded create is younger than two schedule periods (the RPO alarm's "
        "threshold). Per policy, not per resource: <code>smartvault coverage</code> reads "
        "the account and answers for each instance and volume.</p>"
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


_W, _H, _TOP, _LEFT, _BOTTOM = 1000, 260, 16, 44, 40


def _chart(days: tuple[DayCount, ...]) -> str:
    """Two bars a day, created then deleted, on one scale; the y axis starts at 0."""
    peak = max([1, *(d.created for d in days), *(d.deleted for d in days)])
    plot_w, plot_h = _W - _LEFT - 8, _H - _TOP - _BOTTOM
    step = plot_w / len(days)
    bar = max(0.5, step * 0.4)
    base = _TOP + plot_h
    parts = [
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="recovery points per day">',
        f'<line class="axis" x1="{_LEFT}" y1="{base}" x2="{_W - 8}" y2="{base}"/>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end">{peak}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end">0</text>',
    ]
    label_every = max(1, len(days) // 10)
    for i, d in enumerate(days):
        x = _LEFT + i * step + step * 0.1
        for kind, n, dx in (("created", d.created, 0.0), ("deleted", d.deleted, bar)):
            h = plot_h * n / peak
            parts.append(
                f'<rect class="bar {kind}" data-day="{d.day.isoformat()}" data-count="{n}" '
                f'x="{x + dx:.1f}" y="{_TOP + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                f"<title>{d.day.isoformat()}: {n} {kind}</title></rect>"
            )
        if i % label_every == 0 or i == len(days) - 1:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">'
                f"{d.day:%m-%d}</text>"
            )
    parts.append("</svg>")
    created = sum(d.created for d in days)
    deleted = sum(d.deleted for d in days)
    legend = (
        '<p class="legend">'
        f'<span><span class="swatch" style="background:var(--created)"></span>created: '
        f'<strong id="created-total">{created}</strong></span>'
        f'<span><span class="swatch" style="background:var(--deleted)"></span>deleted: '
        f'<strong id="deleted-total">{deleted}</strong></span>'
        "<span>succeeded create and delete records, one per recovery point</span></p>"
    )
    return "".join(parts) + legend


def _e(text: str) -> str:
    return html.escape(text, quote=True)
