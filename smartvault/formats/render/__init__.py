"""The plan for people: terminal text and Markdown for pull requests (JSON lives in plan_json).

Every renderer is a pure function of the plan and its options. Whether to colour
is a parameter: nothing here looks at the terminal, the clock or the environment.
"""

from __future__ import annotations

from typing import Literal

from smartvault.core.compare import Comparison
from smartvault.core.model import Plan
from smartvault.formats import plan_json
from smartvault.formats.render.common import summary_line
from smartvault.formats.render.markdown import FOLD_OVER
from smartvault.formats.render.markdown import FULL_PLAN_HINT
from smartvault.formats.render.markdown import GITHUB_COMMENT_LIMIT
from smartvault.formats.render.markdown import md_escape
from smartvault.formats.render.markdown import render_markdown
from smartvault.formats.render.text import render_text

__all__ = [
    "FOLD_OVER",
    "FULL_PLAN_HINT",
    "GITHUB_COMMENT_LIMIT",
    "Format",
    "md_escape",
    "render",
    "render_markdown",
    "render_text",
    "summary_line",
]

Format = Literal["text", "json", "markdown"]


def render(
    plan: Plan,
    fmt: Format,
    *,
    color: bool = False,
    verbose: bool = False,
    comparison: Comparison | None = None,
) -> str:
    """The plan in ``fmt``: ``text`` (terminal), ``json`` or ``markdown`` (PRs); with
    ``comparison`` (``plan --compare REF``), what the policy change does as well."""
    if fmt == "text":
        return render_text(plan, color=color, verbose=verbose, comparison=comparison)
    if fmt == "json":
        if comparison is not None:
            return plan_json.dumps_compared(plan, comparison)
        return plan_json.dumps(plan)
    if fmt == "markdown":
        return render_markdown(plan, comparison=comparison)
    raise ValueError(f"unknown plan format {fmt!r}; use text, json or markdown")
