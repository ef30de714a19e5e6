"""The audit report page in a real browser: Debian's headless chromium, by WebDriver.

Marked ``browser``: it needs /usr/bin/chromium and /usr/bin/chromedriver, which
``.ci/run`` installs, so it runs in CI. Where they are missing it fails and says how to
install them (it does not skip: a report nobody opened is not tested).

The screenshot of the page it checked is saved to ``$SMARTVAULT_TEST_ARTIFACTS`` when
set, else ``tests/artifacts/`` (ignored by git): ``report.png``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from smartvault.core.model import AuditRecord
from smartvault.formats.report_html import render_report
from tests import webdriver
from tests.factories import utc

pytestmark = pytest.mark.browser

NOW = utc(2026, 12, 2, 6, 0)
DAYS = 5
PER_DAY = 90  # 450 records: more than the 100 rows the page renders at first
ARTIFACTS = Path(
    os.environ.get("SMARTVAULT_TEST_ARTIFACTS") or Path(__file__).parents[1] / "artifacts"
)


def _records() -> list[AuditRecord]:
    """Each day: 60 creates (3 failed), 30 deletes; two policies; one resource id each."""
    out = []
    for day in range(DAYS):
        for n in range(PER_DAY):
            i = day * PER_DAY + n
            action: Any = "create" if n < 60 else "delete"
            out.append(
                AuditRecord(
                    run_id=f"run-{day}",
                    timestamp=NOW - timedelta(days=day, minutes=n + 1),
                    action=action,
                    outcome="failed" if action == "create" and n % 20 == 0 else "succeeded",
                    policy="gold" if n % 2 else "silver",
                    region="us-east-1",
                    resource_id=f"i-{i:04d}",
                    recovery_point=f"{'gold' if n % 2 else 'silver'}/i-{i:04d}/d{day}",
                    snapshot_ids=(f"snap-{i:04d}a", f"snap-{i:04d}b"),
                    error="IncorrectState: busy" if n % 20 == 0 and n < 60 else "",
                    actor="arn:aws:sts::123456789012:assumed-role/smartvault/lambda",
                )
            )
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    why = webdriver.missing()
    if why is not None:
        pytest.fail(why)
    with webdriver.Browser(tmp_path_factory.mktemp("chromium-profile")) as b:
        yield b


@pytest.fixture
def page(browser, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(
        render_report(_records(), generated_at=NOW, since=timedelta(days=DAYS - 1)),
        encoding="utf-8",
    )
    browser.open(path.as_uri())
    assert browser.run("return document.body.dataset.readyMs") is not None  # the script ran
    return browser


def _rows(b) -> int:
    return int(b.run("return document.querySelectorAll('#rows tr').length"))


def _matching(b) -> int:
    return int(b.run("return document.getElementById('count').dataset.matching"))


def _first(b, column: int) -> str:
    return str(b.run(f"return document.querySelector('#rows tr').cells[{column}].textContent"))


def test_the_report_renders_its_chart_and_table_in_chromium(page):
    bars = page.run(
        "return Array.from(document.querySelectorAll('#chart rect.bar')).map("
        "r => [r.classList[1], r.dataset.day, Number(r.dataset.count),"
        " r.getBoundingClientRect().height > 0])"
    )
    created = [b for b in bars if b[0] == "created"]
    deleted = [b for b in bars if b[0] == "deleted"]
    assert len(created) == len(deleted) == DAYS
    # 57 succeeded creates a day (every 20th of 60 failed), 30 deletes; all drawn
    assert {(c, drawn) for _, _, c, drawn in created} == {(57, True)}
    assert {(c, drawn) for _, _, c, drawn in deleted} == {(30, True)}
    assert page.run("return document.getElementById('created-total').textContent") == "285"
    assert page.run("return document.getElementById('attention').dataset.count") == "15"

    assert _matching(page) == DAYS * PER_DAY
    assert _rows(page) == 100  # the first page of rows; the rest on "Show more"
    page.click("#more")
    assert _rows(page) == 200

    page.run("window.scrollTo(0, 0)")
    shot = page.screenshot(ARTIFACTS / "report.png")
    assert shot.stat().st_size > 10_000


def test_typing_in_search_filters_the_rows(page):
    page.type("#search", "gold")
    assert _matching(page) == DAYS * PER_DAY // 2
    page.type("#search", " failed")  # every word must match: gold creates that failed
    assert _matching(page) == 0  # the failures are every 20th record: silver ones
    page.clear("#search")
    page.type("#search", "i-0123")
    assert (_matching(page), _rows(page)) == (1, 1)
    assert _first(page, 5) == "i-0123"
    page.clear("#search")
    page.type("#search", "INCORRECTSTATE")  # case does not matter
    assert _matching(page) == 15


def test_clicking_a_header_sorts_and_clicking_again_reverses(page):
    assert _first(page, 0) == "2026-12-02T05:59:00Z"  # newest first, as written
    page.click("#table th:nth-child(6)")  # resource
    assert _first(page, 5) == "i-0000"
    assert page.run("return document.querySelector('#table th:nth-child(6)').ariaSort") == (
        "ascending"
    )
    page.click("#table th:nth-child(6)")
    assert _first(page, 5) == f"i-{DAYS * PER_DAY - 1:04d}"
    page.click("#table th:nth-child(1)")  # time, ascending: the oldest
    assert _first(page, 0) == "2026-11-28T04:30:00Z"
    page.type("#search", "silver")  # a search keeps the sort: the oldest silver one
    assert (_first(page, 0), _first(page, 3)) == ("2026-11-28T04:31:00Z", "silver")


def test_the_copy_button_selects_the_snapshot_ids(page):
    page.click("#rows tr:first-child button.copy")

    assert page.run("return window.getSelection().toString()") == "snap-0000a snap-0000b"
