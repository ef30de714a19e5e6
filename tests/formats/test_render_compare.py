"""``plan --compare`` in Markdown and JSON: it leads, it fits, and a plain plan is unchanged."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime

from smartvault.core.compare import Side
from smartvault.core.compare import compare
from smartvault.core.model import DeleteAction
from smartvault.core.model import Plan
from smartvault.core.model import PolicySet
from smartvault.formats import plan_json
from smartvault.formats.render import render_markdown

AT = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def deletes(n: int, policy: str = "prod|`x`") -> tuple[DeleteAction, ...]:
    return tuple(
        DeleteAction("us-east-1", policy, "i-1", f"p/i-1/{i:05d}", (f"snap-{i}",), AT, "old")
        for i in range(n)
    )


def plan(actions: tuple[DeleteAction, ...] = ()) -> Plan:
    return Plan(at=AT, generated_at=AT, account_id="1", regions=("us-east-1",), actions=actions)


def comparison(now: Plan, then: Plan):
    empty = PolicySet(policies=())
    return compare(
        "main", "0123456789abcdef", Side(now, frozenset(), empty), Side(then, frozenset(), empty)
    )


def test_the_comment_leads_with_the_change_and_escapes_policy_names():
    now = plan(deletes(2))

    page = render_markdown(now, comparison=comparison(now, plan()))

    lines = page.splitlines()
    assert lines[0] == "## SmartVault: this change against main"
    assert lines[2].startswith("**This change deletes 2 recovery points that main keeps")
    assert "prod\\|\\`x\\`" in page
    assert "| prod|" not in page


def test_the_comment_with_a_comparison_never_exceeds_the_limit():
    now = plan(deletes(3000))

    page = render_markdown(now, limit=20_000, comparison=comparison(now, plan()))

    assert len(page) <= 20_000
    assert "**This change deletes 3,000 recovery points that main keeps" in page
    assert "more actions not shown" in page


def test_the_json_of_a_comparison_is_the_plan_with_compare_last():
    now = plan(deletes(1))

    text = plan_json.dumps_compared(now, comparison(now, plan()))

    document = json.loads(text)
    assert list(document)[-1] == "compare"
    assert {k: v for k, v in document.items() if k != "compare"} == json.loads(plan_json.dumps(now))
    assert plan_json.loads(text) == now  # a saved comparison still reads as its plan
