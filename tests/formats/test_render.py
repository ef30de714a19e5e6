"""The plan for people: terminal text, Markdown for pull requests, and the dispatcher."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.core.model import DeleteAction
from smartvault.core.model import Kept
from smartvault.core.model import Orphan
from smartvault.core.model import Plan
from smartvault.core.model import PlanWarning
from smartvault.core.model import PolicyRegion
from smartvault.core.model import PolicySlot
from smartvault.core.model import Skipped
from smartvault.formats import plan_json
from smartvault.formats import render
from tests import factories
from tests.factories import ARCHIVE
from tests.factories import COPY
from tests.factories import CREATE
from tests.factories import DELETE
from tests.factories import VERIFY
from tests.factories import utc

ANSI = re.compile(r"\x1b\[[0-9;]*m")

KEPT = Kept(
    "us-east-1",
    "prod-nightly",
    "i-0abc",
    "prod-nightly/i-0abc/20261127T0200Z",
    ("snap-3", "snap-4"),
    utc(2026, 11, 27, 2, 0, 4),
    ("keep_last", "daily"),
    resource_name="web-1",
    retention="retention_by_tag[0]",
)
SKIPPED = Skipped(
    "us-east-1",
    "prod-nightly",
    "i-0abc",
    "prod-nightly/i-0abc/20261101T0200Z",
    ("snap-5",),
    "in use by AMI ami-0123",
    resource_name="web-1",
    retention="retention_by_tag[0]",
)
#: the factories' create and delete, naming the resource and the rule as the planner does
NAMED = {"resource_name": "web-1", "retention": "retention_by_tag[0]"}
NAMED_CREATE = dataclasses.replace(CREATE, **NAMED)
NAMED_DELETE = dataclasses.replace(DELETE, **NAMED)
POLICY = PolicySlot(
    "prod-nightly",
    "policies/prod.yaml",
    utc(2026, 11, 28, 2),
    (PolicyRegion("us-east-1", 12, 1),),
)
ORPHAN = Orphan(
    "us-east-1",
    "gone-policy",
    "gone-policy/i-9/20250101T0000Z",
    ("snap-9",),
    utc(2025, 1, 1, 0, 0, 4),
)
WARNING = PlanWarning(
    "i-0abc is selected by 2 policies: prod-nightly, prod-monthly",
    resource_id="i-0abc",
    region="us-east-1",
)


def make_plan(**overrides: Any) -> Plan:
    """One policy, a create and a delete, one kept, one skipped and one warning."""
    defaults = {
        "policies": (POLICY,),
        "actions": (NAMED_CREATE, NAMED_DELETE),
        "kept": (KEPT,),
        "skipped": (SKIPPED,),
        "orphans": (),
        "warnings": (WARNING,),
    }
    return factories.make_plan(**{**defaults, **overrides})


def many_deletes(count: int, policy: str = "prod-nightly") -> tuple[DeleteAction, ...]:
    return tuple(
        dataclasses.replace(
            DELETE,
            policy=policy,
            resource_id=f"i-{n:06d}",
            recovery_point=f"{policy}/i-{n:06d}/20261119T0200Z",
            snapshot_ids=(f"snap-{n:012d}",),
        )
        for n in range(count)
    )


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ")]


def cells(row: str) -> int:
    """How many cells a GFM table row has: unescaped pipes, minus the outer two, plus one."""
    return len(re.findall(r"(?<!\\)\|", row)) - 1


EXPECTED_TEXT = """\
SmartVault plan for account 123456789012 at 2026-11-28T17:00:00Z
Regions: us-east-1; generated 2026-11-28T17:00:02Z

! i-0abc is selected by 2 policies: prod-nightly, prod-monthly (i-0abc, us-east-1)

prod-nightly (policies/prod.yaml, slot 2026-11-28T02:00:00Z; 12 selected, 1 excluded)
  retention rule retention_by_tag[0]
    + create  i-0abc (web-1)  prod-nightly/i-0abc/20261128T0200Z  vol-1, vol-2 — due: newest \
recovery point 2026-11-27T02:00:04Z is before slot 2026-11-28T02:00:00Z
    - delete  i-0abc (web-1)  prod-nightly/i-0abc/20261119T0200Z  snap-1, snap-2 \
(2026-11-19T02:00:03Z) — older than max_age 7d; not kept by keep_last 3
    = 1 recovery point kept
    · skip    i-0abc (web-1)  prod-nightly/i-0abc/20261101T0200Z  snap-5 — in use by AMI ami-0123

Plan: 1 to create, 1 to delete, 0 to archive, 0 to copy, 0 to verify; 1 kept, 1 skipped.
"""

EXPECTED_MARKDOWN = """\
## SmartVault plan

Account 123456789012, evaluated at 2026-11-28T17:00:00Z in us-east-1 \
(generated 2026-11-28T17:00:02Z).

| Create | Delete | Archive | Copy | Verify | Kept | Skipped |
|---:|---:|---:|---:|---:|---:|---:|
| 1 | 1 | 0 | 0 | 0 | 1 | 1 |

**Plan: 1 to create, 1 to delete, 0 to archive, 0 to copy, 0 to verify; 1 kept, 1 skipped.**

**⚠️ Warnings (1)**

- i-0abc is selected by 2 policies: prod-nightly, prod-monthly (i-0abc, us-east-1)

### Policy prod-nightly

policies/prod.yaml, slot 2026-11-28T02:00:00Z; 12 selected, 1 excluded

#### Retention rule retention_by_tag\\[0\\]

**Create (1)**

| Resource | Recovery point | Volumes | Reason |
|---|---|---|---|
| i-0abc (web-1) | prod-nightly/i-0abc/20261128T0200Z | vol-1, vol-2 | due: newest recovery point \
2026-11-27T02:00:04Z is before slot 2026-11-28T02:00:00Z |

**Delete (1)**

| Resource | Recovery point | Snapshots | Created | Reason |
|---|---|---|---|---|
| i-0abc (web-1) | prod-nightly/i-0abc/20261119T0200Z | snap-1, snap-2 | \
2026-11-19T02:00:03Z | older than max_age 7d; not kept by keep_last 3 |

**Skipped (1)**

| Resource | Recovery point | Snapshots | Reason |
|---|---|---|---|
| i-0abc (web-1) | prod-nightly/i-0abc/20261101T0200Z | snap-5 | in use by AMI ami-0123 |

<details><summary>Kept (1)</summary>

| Resource | Recovery point | Snapshots | Created | Kept by | Verified |
|---|---|---|---|---|---|
| i-0abc (web-1) | prod-nightly/i-0abc/20261127T0200Z | snap-3, snap-4 | \
2026-11-27T02:00:04Z | keep_last, daily |  |

</details>
"""


# --- text -----------------------------------------------------------------------


class TestRenderText:
    def test_a_small_plan_renders_exactly(self) -> None:
        assert render.render_text(make_plan()) == EXPECTED_TEXT

    def test_verbose_lists_each_kept_recovery_point_with_the_rules_that_keep_it(self) -> None:
        text = render.render_text(make_plan(), verbose=True)

        assert (
            "    = keep    i-0abc (web-1)  prod-nightly/i-0abc/20261127T0200Z  snap-3, snap-4 "
            "(2026-11-27T02:00:04Z) — kept by keep_last, daily\n"
        ) in text
        assert "recovery point kept\n" not in text

    def test_archive_and_copy_are_marked_with_a_tilde(self) -> None:
        text = render.render_text(make_plan(actions=(ARCHIVE, COPY)))

        assert (
            "    ~ archive i-0abc  prod-nightly/i-0abc/20260801T0200Z  snap-7 "
            "(2026-08-01T02:00:05Z) — older than archive.after 90d\n"
        ) in text
        assert (
            "    ~ copy    i-0abc  prod-nightly/i-0abc/20261127T0200Z  snap-3 "
            "(2026-11-27T02:00:04Z) → us-west-2 (KMS alias/backup) — copy rule us-west-2\n"
        ) in text
        assert text.endswith(
            "Plan: 0 to create, 0 to delete, 1 to archive, 1 to copy, 0 to verify; "
            "1 kept, 1 skipped.\n"
        )

    def test_a_restore_test_is_marked_with_a_question_mark_its_time_limit_and_reason(
        self,
    ) -> None:
        plan = make_plan(actions=(VERIFY,), regions=("us-west-2",), kept=(), skipped=())

        text = render.render_text(plan)

        assert (
            "    ? verify  i-0abc  prod-nightly/i-0abc/20261127T0200Z  snap-13, snap-14 "
            "(2026-11-27T02:10:04Z), timeout 45m — no verified recovery point yet\n"
        ) in text
        assert text.endswith(
            "Plan: 0 to create, 0 to delete, 0 to archive, 0 to copy, 1 to verify; "
            "0 kept, 0 skipped.\n"
        )

    def test_a_restore_test_is_cyan_in_colour(self) -> None:
        text = render.render_text(make_plan(actions=(VERIFY,)), color=True)

        assert "\x1b[36m    ? verify" in text

    def test_kept_recovery_points_say_which_are_verified_and_when(self) -> None:
        verified = dataclasses.replace(
            KEPT, recovery_point="rp-verified", verified=utc(2026, 11, 28, 3, 12, 9)
        )
        plan = make_plan(kept=(KEPT, verified))

        short = render.render_text(plan)
        long = render.render_text(plan, verbose=True)

        assert "    = 2 recovery points kept, 1 verified\n" in short
        assert (
            "rp-verified  snap-3, snap-4 (2026-11-27T02:00:04Z) — kept by keep_last, daily; "
            "verified 2026-11-28\n" in long
        )
        assert (
            "20261127T0200Z  snap-3, snap-4 (2026-11-27T02:00:04Z) — kept by keep_last, "
            "daily\n" in long
        )

    def test_a_copy_with_the_default_key_names_no_key(self) -> None:
        copy = dataclasses.replace(COPY, kms_key_id=None)

        text = render.render_text(make_plan(actions=(copy,)))

        assert "(2026-11-27T02:00:04Z) → us-west-2 — copy rule us-west-2\n" in text

    def test_without_colour_there_are_no_escape_codes(self) -> None:
        plan = make_plan(actions=(CREATE, DELETE, ARCHIVE, COPY, VERIFY), orphans=(ORPHAN,))

        assert "\x1b" not in render.render_text(plan, verbose=True)

    def test_with_colour_creates_are_green_deletes_red_and_warnings_yellow(self) -> None:
        text = render.render_text(make_plan(actions=(CREATE, DELETE, COPY)), color=True)

        assert "\x1b[32m    + create" in text
        assert "\x1b[31m    - delete" in text
        assert "\x1b[33m    ~ copy" in text
        assert "\x1b[1;33m! i-0abc is selected" in text
        assert ANSI.sub("", text) == render.render_text(make_plan(actions=(CREATE, DELETE, COPY)))

    def test_an_empty_plan_says_no_changes(self) -> None:
        plan = make_plan(policies=(), actions=(), kept=(), skipped=(), warnings=())

        assert render.render_text(plan) == (
            "SmartVault plan for account 123456789012 at 2026-11-28T17:00:00Z\n"
            "Regions: us-east-1; generated 2026-11-28T17:00:02Z\n"
            "\n"
            "No changes. 0 recovery points kept.\n"
        )

    def test_a_plan_without_actions_counts_what_it_keeps(self) -> None:
        kept = tuple(dataclasses.replace(KEPT, recovery_point=f"rp-{n}") for n in range(14))
        plan = make_plan(actions=(), kept=kept, skipped=())

        text = render.render_text(plan)

        assert "    = 14 recovery points kept\n" in text
        assert text.endswith("\nNo changes. 14 recovery points kept.\n")

    def test_no_changes_mentions_skipped_recovery_points(self) -> None:
        assert render.summary_line(make_plan(actions=())) == (
            "No changes. 1 recovery point kept, 1 skipped."
        )

    def test_a_disabled_policy_and_one_with_nothing_to_do_are_listed(self) -> None:
        plan = make_plan(
            policies=(PolicySlot("old", "policies/old.yaml", None),),
            actions=(),
            kept=(),
            skipped=(),
        )

        assert "\nold (policies/old.yaml, disabled)\n  nothing to do\n" in render.render_text(plan)

    def test_a_policy_in_no_loaded_file_still_gets_a_section(self) -> None:
        plan = make_plan(policies=())

        assert "\nprod-nightly\n  retention rule retention_by_tag[0]\n    + create" in (
            render.render_text(plan)
        )

    def test_orphans_are_listed_after_the_policies(self) -> None:
        text = render.render_text(make_plan(orphans=(ORPHAN,)))

        assert (
            "Orphans (their policy is in no loaded file; never deleted):\n"
            "  gone-policy  us-east-1  gone-policy/i-9/20250101T0000Z  snap-9 "
            "(2025-01-01T00:00:04Z)\n"
        ) in text

    def test_with_several_regions_each_line_names_its_region(self) -> None:
        west = dataclasses.replace(DELETE, region="us-west-2")
        plan = make_plan(regions=("us-east-1", "us-west-2"), actions=(CREATE, west))

        text = render.render_text(plan)

        assert "    + create  us-east-1  i-0abc  " in text
        assert "    - delete  us-west-2  i-0abc  " in text


# --- Markdown -------------------------------------------------------------------


class TestRenderMarkdown:
    def test_a_small_plan_renders_exactly(self) -> None:
        assert render.render_markdown(make_plan()) == EXPECTED_MARKDOWN

    def test_the_summary_table_comes_before_the_sections(self) -> None:
        text = render.render_markdown(make_plan(actions=(CREATE, DELETE, ARCHIVE, COPY)))

        assert text.index(
            "| Create | Delete | Archive | Copy | Verify | Kept | Skipped |"
        ) < text.index("### Policy")
        assert "| 1 | 1 | 1 | 1 | 0 | 1 | 1 |" in text
        assert "| us-west-2 (KMS alias/backup) | copy rule us-west-2 |" in text

    def test_a_restore_test_has_its_own_table_with_time_limit_and_reason(self) -> None:
        text = render.render_markdown(make_plan(actions=(CREATE, VERIFY)))

        assert "| 1 | 0 | 0 | 0 | 1 | 1 | 1 |" in text
        assert (
            "**Verify (1)**\n\n"
            "| Region | Resource | Recovery point | Snapshots | Created | Timeout | Reason |\n"
            "|---|---|---|---|---|---|---|\n"
            "| us-west-2 | i-0abc | prod-nightly/i-0abc/20261127T0200Z | snap-13, snap-14 | "
            "2026-11-27T02:10:04Z | 45m | no verified recovery point yet |\n"
        ) in text
        assert text.index("**Create (1)**") < text.index("**Verify (1)**")

    def test_a_verified_kept_recovery_point_shows_the_day_it_was_verified(self) -> None:
        verified = dataclasses.replace(KEPT, verified=utc(2026, 11, 28, 3, 12, 9))

        text = render.render_markdown(make_plan(kept=(verified,)))

        assert "| 2026-11-27T02:00:04Z | keep_last, daily | verified 2026-11-28 |\n" in text

    def test_an_empty_plan_says_no_changes(self) -> None:
        plan = make_plan(policies=(), actions=(), kept=(), skipped=(), warnings=())

        text = render.render_markdown(plan)

        assert "**No changes. 0 recovery points kept.**" in text
        assert "| 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in text
        assert "<details>" not in text

    def test_user_text_is_escaped_so_tables_hold_and_no_html_gets_through(self) -> None:
        hostile = "a|b <script>x</script> `code` *bold* [link](http://x) @team"
        delete = dataclasses.replace(DELETE, policy=hostile, reason=hostile)
        plan = make_plan(policies=(), actions=(delete,), kept=(), skipped=(), warnings=())

        text = render.render_markdown(plan)

        assert "<script>" not in text
        assert "`code`" not in text
        assert "@team" not in text
        assert (
            "a\\|b &lt;script&gt;x&lt;/script&gt; \\`code\\` \\*bold\\* \\[link\\](http://x) "
            "@&#8203;team"
        ) in text
        assert "### Policy a\\|b &lt;script&gt;" in text
        header, row = table_rows(text)[2:4]
        assert cells(row) == cells(header) == 5

    def test_underscores_inside_words_are_left_alone_but_emphasis_is_escaped(self) -> None:
        assert render.md_escape("keep_last _x_ a_") == "keep_last \\_x\\_ a\\_"

    def test_a_warning_cannot_become_a_nested_list(self) -> None:
        plan = make_plan(warnings=(PlanWarning("- not a list"), PlanWarning("1. nor this")))

        text = render.render_markdown(plan)

        assert "- \\- not a list\n" in text
        assert "- 1\\. nor this\n" in text

    def test_line_breaks_in_user_text_do_not_break_a_row(self) -> None:
        delete = dataclasses.replace(DELETE, reason="one\ntwo\r\nthree")

        text = render.render_markdown(make_plan(actions=(delete,)))

        assert "| one two  three |" in text

    def test_tables_over_twenty_rows_are_folded(self) -> None:
        plan = make_plan(actions=(CREATE, *many_deletes(21)))

        text = render.render_markdown(plan)

        assert "<details><summary>Delete (21)</summary>\n\n| Resource |" in text
        assert "**Create (1)**" in text
        assert text.count("</details>") == 2  # deletions, kept

    def test_nothing_is_left_out_when_it_fits(self) -> None:
        text = render.render_markdown(make_plan(actions=many_deletes(300)))

        assert "not shown" not in text
        # the summary table, then a header and the rows of deletions, skipped and kept
        assert len(table_rows(text)) == 2 + (1 + 300) + (1 + 1) + (1 + 1)

    def test_fifty_thousand_deletions_fit_in_a_github_comment(self) -> None:
        plan = make_plan(actions=many_deletes(50_000))

        text = render.render_markdown(plan)

        assert len(text) <= 65_536
        assert "| 0 | 50,000 | 0 | 0 | 0 | 1 | 1 |" in text
        assert "<details><summary>Delete (50,000)</summary>" in text
        shown = sum(1 for row in table_rows(text) if row.startswith("| i-00"))
        assert shown > 100
        assert (
            f"… and {50_000 - shown:,} more deletions not shown; "
            "run `smartvault plan --format json` for the full plan"
        ) in text
        assert text.count("<details>") == text.count("</details>")

    def test_rows_are_left_out_of_the_longest_sections_first(self) -> None:
        plan = make_plan(
            policies=(),
            actions=(*many_deletes(3000, "big"), *many_deletes(5, "small")),
            kept=(),
            skipped=(),
        )

        text = render.render_markdown(plan, limit=20_000)

        assert len(text) <= 20_000
        assert "more deletions not shown" in text
        assert text.count("not shown") == 1
        assert all(f"small/i-{n:06d}/" in text for n in range(5))
        assert "big/i-000099/" in text

    def test_when_not_even_the_titles_fit_the_summary_remains(self) -> None:
        warnings = tuple(PlanWarning(f"warning {n}", policy=f"p-{n}") for n in range(400))
        actions = tuple(
            dataclasses.replace(DELETE, policy=f"policy-{n}", resource_id=f"i-{n}")
            for n in range(400)
        )
        plan = make_plan(actions=actions, warnings=warnings)

        text = render.render_markdown(plan, limit=2_000)

        assert len(text) <= 2_000
        assert "| 0 | 400 | 0 | 0 | 0 | 1 | 1 |" in text
        assert "The plan is too large to show here" in text

    @settings(max_examples=100, deadline=None)
    @given(limit=st.integers(min_value=0, max_value=6_000))
    def test_the_limit_is_never_exceeded(self, limit: int) -> None:
        plan = make_plan(
            actions=(CREATE, *many_deletes(40), ARCHIVE, COPY),
            orphans=(ORPHAN,) * 25,
            warnings=(WARNING,) * 3,
        )

        assert len(render.render_markdown(plan, limit=limit)) <= limit

    def test_a_disabled_policy_with_nothing_to_do_says_so(self) -> None:
        plan = make_plan(
            policies=(PolicySlot("old", "policies/old.yaml", None),),
            actions=(),
            kept=(),
            skipped=(),
        )

        text = render.render_markdown(plan)

        assert "### Policy old\n\npolicies/old.yaml, disabled\n\nNothing to do.\n" in text

    def test_orphans_have_their_own_section(self) -> None:
        text = render.render_markdown(make_plan(orphans=(ORPHAN,)))

        assert "### Orphans\n\nTheir policy is in no loaded file" in text
        assert (
            "| gone-policy | us-east-1 | gone-policy/i-9/20250101T0000Z | snap-9 | "
            "2025-01-01T00:00:04Z |"
        ) in text

    def test_with_several_regions_tables_get_a_region_column(self) -> None:
        west = dataclasses.replace(DELETE, region="us-west-2")
        plan = make_plan(regions=("us-east-1", "us-west-2"), actions=(west,))

        text = render.render_markdown(plan)

        assert "| Region | Resource | Recovery point | Snapshots | Created | Reason |" in text
        assert "| us-west-2 | i-0abc |" in text


# --- dispatch ---------------------------------------------------------------------


class TestRender:
    @pytest.mark.parametrize(
        ("fmt", "expected"),
        [
            ("text", EXPECTED_TEXT),
            ("markdown", EXPECTED_MARKDOWN),
            ("json", plan_json.dumps(make_plan())),
        ],
        ids=["text", "markdown", "json"],
    )
    def test_render_dispatches_on_the_format(self, fmt: render.Format, expected: str) -> None:
        assert render.render(make_plan(), fmt) == expected

    def test_render_passes_colour_and_verbosity_to_text(self) -> None:
        assert render.render(make_plan(), "text", color=True, verbose=True) == render.render_text(
            make_plan(), color=True, verbose=True
        )

    def test_an_unknown_format_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown plan format 'yaml'"):
            render.render(make_plan(), "yaml")  # type: ignore[arg-type]


# --- retention rules and names --------------------------------------------------------


class TestRuleGroups:
    def mixed(self) -> Plan:
        """Lines of four rules, given out of order: the rendering sorts them by rule."""
        copy = dataclasses.replace(COPY, retention="copies[0]")
        gold = dataclasses.replace(NAMED_DELETE, retention="retention_by_tag[1]+retention_tag")
        return make_plan(
            actions=(copy, gold, dataclasses.replace(CREATE, retention="retention")),
            kept=(dataclasses.replace(KEPT, retention=None, kept_by=("disabled",)),),
            skipped=(),
            warnings=(),
        )

    def test_text_groups_a_policys_lines_under_an_indented_header_per_rule(self) -> None:
        text = render.render_text(self.mixed())

        headers = [line for line in text.splitlines() if line.startswith("  retention rule")]
        assert headers == [
            "  retention rule retention",
            "  retention rule retention_by_tag[1]+retention_tag",
            "  retention rule copies[0]",
        ]
        assert "\n  no retention rule\n    = 1 recovery point kept\n" in text
        assert "  retention rule retention\n    + create  i-0abc  " in text
        assert "retention_by_tag[1]+retention_tag\n    - delete  i-0abc (web-1)  " in text

    def test_markdown_has_a_sub_heading_per_rule_with_its_own_tables(self) -> None:
        markdown = render.render_markdown(self.mixed())

        headings = [line for line in markdown.splitlines() if line.startswith("#### ")]
        assert headings == [
            "#### Retention rule retention",
            "#### Retention rule retention_by_tag\\[1\\]+retention_tag",
            "#### Retention rule copies\\[0\\]",
            "#### No retention rule",
        ]
        after_copies = markdown.split("#### Retention rule copies\\[0\\]")[1]
        assert after_copies.index("**Copy (1)**") < after_copies.index("#### No retention rule")

    def test_counts_of_several_regions_are_shown_per_region(self) -> None:
        policy = dataclasses.replace(
            POLICY, regions=(PolicyRegion("us-east-1", 12, 1), PolicyRegion("us-west-2", 0, 2))
        )
        text = render.render_text(make_plan(policies=(policy,)))

        assert (
            "prod-nightly (policies/prod.yaml, slot 2026-11-28T02:00:00Z; us-east-1 12 selected, "
            "1 excluded; us-west-2 0 selected, 2 excluded)\n"
        ) in text

    def test_a_name_with_control_characters_cannot_drive_the_terminal(self) -> None:
        odd = dataclasses.replace(NAMED_CREATE, resource_name="web\x1b[31m-1\n")

        text = render.render_text(make_plan(actions=(odd,)))

        assert "i-0abc (web?[31m-1?)" in text
        assert "\x1b" not in text
