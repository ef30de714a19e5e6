"""The audit report page as text: self-contained, escaped, with the counts it claims.

The page in a real browser (rendering, search, sort) is tests/formats/test_report_browser.py.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smartvault.core.model import AuditRecord
from smartvault.core.model import PolicySet
from smartvault.formats.report_html import COLUMNS
from smartvault.formats.report_html import decoded
from smartvault.formats.report_html import embed_json
from smartvault.formats.report_html import render_report
from tests.factories import make_policy
from tests.factories import make_record
from tests.factories import utc

NOW = utc(2026, 12, 2, 6, 0)


def record(**fields: Any) -> AuditRecord:
    return make_record(NOW, **{"snapshot_ids": ("snap-0a", "snap-0b"), **fields})


class _Page(HTMLParser):
    """Every element's tag and attributes, and the text of each <script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in = dict(attrs)
            self.scripts.append((self._in, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def data_of(page: str) -> Any:
    blocks = [t for a, t in parse(page).scripts if a.get("type") == "application/json"]
    assert len(blocks) == 1
    return json.loads(blocks[0])


HOSTILE = "</script><script>alert(1)</script><!-- &amp; <b>\u2028\u2029 </SCRIPT >"


def test_no_record_text_can_end_the_data_block_or_become_markup():
    page = render_report(
        [record(reason=HOSTILE, outcome="failed", actor=HOSTILE, policy="p<i>")],
        generated_at=NOW,
        since=timedelta(days=1),
    )

    parsed = parse(page)
    # the data block and the page's own script: nothing the record could have opened
    assert [a.get("type") for a, _ in parsed.scripts] == ["application/json", None]
    assert not any(tag in {"b", "i"} for tag, _ in parsed.tags)
    block = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert block is not None
    assert not set(block.group(1)) & {"<", ">", "&", "\u2028", "\u2029"}
    row = decoded(data_of(page))[0]
    assert row[COLUMNS.index("reason / error")] == HOSTILE
    assert row[COLUMNS.index("actor")] == HOSTILE


@given(st.text())
def test_embedded_json_reads_back_unchanged_and_holds_no_markup(text):
    embedded = embed_json({"t": text, "l": [text]})

    assert json.loads(embedded) == {"t": text, "l": [text]}
    assert not set(embedded) & {"<", ">", "&", "\u2028", "\u2029"}


def test_repeated_values_are_written_once_and_read_back_whole():
    records = [
        record(actor="arn:aws:sts::1:assumed-role/r/s", resource_id=f"i-{n}") for n in range(3)
    ]

    data = data_of(render_report(records, generated_at=NOW, since=timedelta(days=1)))

    assert data["strings"].count("arn:aws:sts::1:assumed-role/r/s") == 1
    assert [r[COLUMNS.index("resource")] for r in decoded(data)] == ["i-0", "i-1", "i-2"]
    assert {r[COLUMNS.index("actor")] for r in decoded(data)} == {"arn:aws:sts::1:assumed-role/r/s"}


def test_the_page_loads_nothing_from_anywhere():
    page = render_report([record()], generated_at=NOW, since=timedelta(days=1))

    for tag, attrs in parse(page).tags:
        assert "src" not in attrs, tag
        assert tag not in {"link", "iframe", "img", "object", "embed"}
    assert not re.search(r"https?://|@import|url\(", page)
    assert "default-src 'none'" in page  # and the page's policy forbids any fetch


def test_the_chart_has_two_bars_a_day_with_their_counts():
    records = [
        record(timestamp=utc(2026, 12, 1, 3)),
        record(timestamp=utc(2026, 12, 1, 4)),
        record(timestamp=utc(2026, 12, 1, 5), action="delete"),
        record(timestamp=utc(2026, 12, 2, 3)),
    ]

    page = render_report(records, generated_at=NOW, since=timedelta(days=2))

    bars = [
        (a["class"], a["data-day"], a["data-count"]) for t, a in parse(page).tags if t == "rect"
    ]
    assert bars == [
        ("bar created", "2026-11-30", "0"),
        ("bar deleted", "2026-11-30", "0"),
        ("bar created", "2026-12-01", "2"),
        ("bar deleted", "2026-12-01", "1"),
        ("bar created", "2026-12-02", "1"),
        ("bar deleted", "2026-12-02", "0"),
    ]
    assert "<title>2026-12-01: 2 created</title>" in page


def test_failures_come_first_and_records_are_in_the_data_newest_first():
    failed = record(outcome="failed", error="IncorrectState: volume busy", run_id="run-9")
    older = record(timestamp=NOW - timedelta(days=1), recovery_point="nightly/i-0abc/old")

    page = render_report([older, failed], generated_at=NOW, since=timedelta(days=2))

    assert page.index('id="attention"') < page.index('id="chart"') < page.index('id="records"')
    attention = page[page.index('id="attention"') : page.index('id="chart"')]
    assert "IncorrectState: volume busy" in attention
    assert 'data-count="1"' in attention
    rows = decoded(data_of(page))
    assert [r[COLUMNS.index("recovery point")] for r in rows] == [
        "nightly/i-0abc/20261202T0300Z",
        "nightly/i-0abc/old",
    ]
    assert rows[0][COLUMNS.index("snapshot ids")] == "snap-0a snap-0b"


def test_without_failures_the_section_says_so():
    page = render_report([record()], generated_at=NOW, since=timedelta(days=1))

    assert '<section id="attention" class="clear" data-count="0">' in page


def test_each_policy_row_shows_its_rpo():
    page = render_report(
        [record()],
        generated_at=NOW,
        since=timedelta(days=1),
        policies=PolicySet((make_policy("nightly"), make_policy("weekly"))),
    )

    rpo = dict(re.findall(r'<tr data-policy="([^"]+)">.*?data-rpo="(\w+)"', page))
    assert rpo == {"nightly": "met", "weekly": "missed"}


def test_an_empty_log_is_still_a_page():
    page = render_report([], generated_at=NOW, since=timedelta(days=7))

    assert decoded(data_of(page)) == []
    assert len([t for t, _ in parse(page).tags if t == "rect"]) == 16  # 8 days, 2 bars each
    assert "0 records from 2026-11-25T06:00:00Z" in page


def test_the_page_template_ships_in_the_wheel():
    """Its files are package data: pyproject's globs must name every one of them."""
    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["smartvault"]
    package = root / "smartvault"
    shipped = {p for g in globs for p in package.glob(g)}
    files = set((package / "formats" / "report").iterdir())

    assert files == {
        package / "formats" / "report" / n for n in ("page.html", "report.css", "report.js")
    }
    assert files <= shipped
