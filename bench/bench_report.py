"""How responsive the audit report page is with many records, in headless chromium. By hand:

    python bench/bench_report.py            # 50,000 records
    python bench/bench_report.py 200000     # another size

Needs Debian's chromium and chromium-driver (as the browser test does). For each size it
prints the page's size and the time Python takes to render it, then, the median of three
page loads in a fresh headless chromium:

* first render: ``performance.now()`` when the page's script has drawn the table's first
  rows (from navigation start: HTML parse, JSON.parse of every record, the first 100 rows);
* load: the WebDriver navigation, until the load event, as a person waits for it;
* keystrokes: typing ``s``, ``si``, ``sil``, ``silv`` in the search box, each timed from
  the ``input`` event to the next animation frame after it (filter, rows redrawn, layout);
  the first, "s", matches nearly every row (snap-, succeeded, silver), so it is shown apart;
* sort: a click on the resource header, to the next frame.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smartvault.core.model import AuditRecord
from smartvault.formats.report_html import render_report
from tests import webdriver

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
ACTIONS = ("create", "create", "delete", "copy", "verify", "archive")


def records(n: int) -> list[AuditRecord]:
    """``n`` records over 30 days: four policies, 1 in 50 failed, ids that look real."""
    out = []
    for i in range(n):
        policy = ("gold", "silver", "bronze", "weekly")[i % 4]
        action = ACTIONS[i % len(ACTIONS)]
        out.append(
            AuditRecord(
                run_id=f"2026-12-01T03:00:00Z-{i // 40:06x}",
                timestamp=NOW - timedelta(seconds=(i * 52) % (30 * 86400)),
                action=action,  # type: ignore[arg-type]
                outcome="failed" if i % 50 == 0 else "succeeded",
                policy=policy,
                region=("us-east-1", "eu-west-1")[i % 2],
                resource_id=f"i-0{i:016x}",
                recovery_point=f"{policy}/i-0{i:016x}/20261201T0300Z",
                snapshot_ids=(f"snap-0{i:016x}", f"snap-1{i:016x}"),
                error="IncorrectState: the volume is busy" if i % 50 == 0 else "",
                reason="kept_by: keep_last" if action == "delete" else "",
                actor="arn:aws:sts::123456789012:assumed-role/smartvault-runner/smartvault",
            )
        )
    return out


_KEY = """
const [text, done] = arguments;
const box = document.getElementById('search');
const t0 = performance.now();
box.value = text;
box.dispatchEvent(new Event('input'));
requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));
"""
_SORT = """
const done = arguments[0];
const t0 = performance.now();
document.querySelector('#table th:nth-child(6)').click();
requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));
"""


def measure(n: int) -> None:
    started = time.perf_counter()
    page = render_report(records(n), generated_at=NOW, since=timedelta(days=30))
    rendered = time.perf_counter() - started
    print(f"{n} records: page {len(page.encode()) / 1e6:.1f} MB, render_report {rendered:.2f} s")
    why = webdriver.missing()
    if why:
        sys.exit(why)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        path.write_text(page, encoding="utf-8")
        first, loads, cold, warm, sorts = [], [], [], [], []
        for run in range(3):
            with webdriver.Browser(Path(tmp) / f"profile-{run}", timeout=60) as b:
                t0 = time.perf_counter()
                b.open(path.as_uri())
                loads.append((time.perf_counter() - t0) * 1000)
                first.append(float(b.run("return Number(document.body.dataset.readyMs)")))
                times = [b.run_async(_KEY, word) for word in ("s", "si", "sil", "silv")]
                cold.append(times[0])
                warm.extend(times[1:])
                sorts.append(b.run_async(_SORT))
                matching = b.run("return document.getElementById('count').textContent")
        med = statistics.median
        print(f"  first render {med(first):.0f} ms (navigation start to first rows drawn)")
        print(f"  load         {med(loads):.0f} ms (WebDriver navigation, to the load event)")
        print(f"  keystroke    first {med(cold):.0f} ms, then {med(warm):.0f} ms (median)")
        print(f"  sort click   {med(sorts):.0f} ms (within a search: {matching})")


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [50_000]:
        measure(size)
