"""Coverage rendered: terminal text, Markdown and JSON, from a coverage built by hand."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from smartvault.core.coverage import CopyRef
from smartvault.core.coverage import Coverage
from smartvault.core.coverage import PointRef
from smartvault.core.coverage import PolicyCoverage
from smartvault.core.coverage import ResourceCoverage
from smartvault.core.model import PlanWarning
from smartvault.formats.render.coverage import render_coverage
from smartvault.formats.render.coverage import render_markdown
from smartvault.formats.render.coverage import render_text
from smartvault.formats.render.coverage import summary_line
from tests.factories import ACCOUNT
from tests.factories import REGION
from tests.factories import utc

AT = utc(2026, 12, 2, 12)
NEWEST = PointRef("nightly/i-01/20261202T0300Z", REGION, utc(2026, 12, 2, 3, 0, 4))
VERIFIED = PointRef(
    "nightly/i-01/20261128T0300Z", REGION, utc(2026, 11, 28, 3, 0, 4), utc(2026, 11, 29, 5)
)
COPY = CopyRef(
    "us-west-2", PointRef("nightly/i-01/20261202T0300Z", "us-west-2", utc(2026, 12, 2, 3, 9))
)
DAY = timedelta(days=1)


def _protects(
    rpo: str = "met", reason: str = "newest is 8h 59m old: within 2 x 1d", **kw: object
) -> PolicyCoverage:
    fields: dict[str, object] = {
        "newest": NEWEST,
        "newest_verified": VERIFIED,
        "copies": (COPY,),
        "rpo": rpo,
        "period": DAY,
        "rpo_reason": reason,
    }
    fields.update(kw)
    return PolicyCoverage("nightly", "protects", **fields)  # type: ignore[arg-type]


def _instance(rid: str, *entries: PolicyCoverage, name: str | None = None) -> ResourceCoverage:
    return ResourceCoverage(REGION, "instance", rid, name, "running", entries)


REPORT = Coverage(
    at=AT,
    account_id=ACCOUNT,
    regions=(REGION,),
    resources=(
        _instance("i-04", name="scratch | tmp"),
        _instance("i-05", PolicyCoverage("nightly", "excluded", rule="exclude_tags backup-skip")),
        _instance("i-07", PolicyCoverage("old", "disabled")),
        _instance(
            "i-02",
            _protects(
                "missed", "newest is 5d 9h old: older than 2 x 1d", newest_verified=None, copies=()
            ),
        ),
        _instance("i-01", _protects(), name="web-1"),
        ResourceCoverage(REGION, "volume", "vol-010", None, "in-use", (_protects(via="i-01"),)),
    ),
    warnings=(PlanWarning("schedule cannot be read (bad): nothing is created", "broken"),),
)


class TestText:
    def test_sections_come_in_order_with_their_counts(self) -> None:
        text = render_text(REPORT)
        assert (
            text.index("Unprotected: no enabled policy selects them (3)")
            < text.index(
                "RPO missed: the newest recovery point is older than two schedule periods (1)"
            )
            < text.index("Protected, RPO met (2)")
        )
        assert text.endswith(
            "6 resources: 3 unprotected (1 excluded by a rule), 1 RPO missed, 2 protected.\n"
        )

    def test_each_policy_shows_its_points_its_copies_and_its_rpo(self) -> None:
        text = render_text(REPORT)
        assert (
            "  i-01 (web-1)  instance, us-east-1, running\n"
            "    protected by nightly: RPO met: newest is 8h 59m old: within 2 x 1d\n"
            "      newest    2026-12-02T03:00:04Z  nightly/i-01/20261202T0300Z\n"
            "      verified  2026-11-28T03:00:04Z  nightly/i-01/20261128T0300Z  "
            "(verified 2026-11-29T05:00:00Z)\n"
            "      copies    us-west-2 (newest 2026-12-02T03:09:00Z)\n"
        ) in text
        assert "    protected by nightly through instance i-01: RPO met" in text
        assert "RPO MISSED: newest is 5d 9h old: older than 2 x 1d" in text
        assert "      verified  none\n" in text

    def test_exclusions_disabled_policies_and_no_policy_are_said_in_words(self) -> None:
        text = render_text(REPORT)
        assert "    excluded from nightly by exclude_tags backup-skip\n" in text
        assert "    old would select it, but the policy is disabled\n" in text
        assert (
            "  i-04 (scratch | tmp)  instance, us-east-1, running\n"
            "    no policy's selector.tags match it" in text
        )

    def test_warnings_come_before_the_resources(self) -> None:
        text = render_text(REPORT)
        assert text.index("! schedule cannot be read") < text.index("Unprotected")
        assert "(policy broken)" in text

    def test_colour_only_when_asked(self) -> None:
        assert "\x1b[" not in render_text(REPORT)
        assert "\x1b[1;31mUnprotected" in render_text(REPORT, color=True)

    def test_no_resources_says_so(self) -> None:
        empty = Coverage(AT, ACCOUNT, (REGION,), ())
        assert "No instances or volumes in these regions." in render_text(empty)
        assert summary_line(empty) == "0 resources: 0 unprotected, 0 RPO missed, 0 protected."


class TestMarkdown:
    def test_a_table_per_status_with_a_row_per_resource(self) -> None:
        md = render_markdown(REPORT)
        header = "| Resource | Name | Region | Policy | Newest | Verified | Held | RPO |"
        assert md.count(header) == 3
        assert (
            "| `i-02` (instance) |  | us-east-1 | `nightly` | 2026-12-02T03:00:04Z | — "
            "|  | **missed**: newest is 5d 9h old: older than 2 x 1d |"
        ) in md
        assert "| `vol-010` (volume) |  | us-east-1 | `nightly` via `i-01` |" in md

    def test_held_points_are_counted_in_their_own_column(self) -> None:
        held = Coverage(AT, ACCOUNT, (REGION,), (_instance("i-09", _protects(held=2)),))
        assert "| 2026-11-28T03:00:04Z | 2 | met: " in render_markdown(held)

    def test_names_are_escaped_so_they_cannot_break_the_table(self) -> None:
        assert "| scratch \\| tmp |" in render_markdown(REPORT)

    def test_exclusions_and_warnings_are_shown(self) -> None:
        md = render_markdown(REPORT)
        assert "`nightly` excluded: exclude_tags backup-skip" in md
        assert "`old` (disabled)" in md
        assert "- :warning: schedule cannot be read" in md


class TestHeld:
    REPORT = Coverage(
        AT,
        ACCOUNT,
        (REGION,),
        (
            _instance("i-09", _protects(held=2)),
            _instance("i-08", PolicyCoverage("nightly", "excluded", rule="exclude_tags x", held=1)),
        ),
    )

    def test_text_says_how_many_points_are_held(self) -> None:
        text = render_text(self.REPORT)
        assert "      held      2 recovery point(s) held (smartvault:hold)" in text
        assert "excluded from nightly by exclude_tags x; 1 recovery point(s) held" in text

    def test_text_says_nothing_of_holds_when_there_are_none(self) -> None:
        assert "held" not in render_text(REPORT)

    def test_json_counts_them_per_policy_and_per_resource(self) -> None:
        data = json.loads(render_coverage(self.REPORT, "json"))
        by_id = {r["resource_id"]: r for r in data["resources"]}
        assert by_id["i-09"]["held"] == 2
        assert by_id["i-09"]["policies"][0]["held"] == 2
        assert by_id["i-08"]["held"] == 1


class TestJson:
    def test_the_document_has_a_version_a_summary_and_every_field(self) -> None:
        data = json.loads(render_coverage(REPORT, "json"))
        assert data["format_version"] == 1
        assert data["at"] == "2026-12-02T12:00:00Z"
        assert data["summary"] == {
            "resources": 6,
            "unprotected": 3,
            "excluded": 1,
            "rpo_missed": 1,
            "protected": 2,
        }
        first = data["resources"][4]
        assert first["resource_id"] == "i-01"
        assert first["policies"] == [
            {
                "policy": "nightly",
                "relation": "protects",
                "rule": None,
                "via": None,
                "newest": {
                    "recovery_point": "nightly/i-01/20261202T0300Z",
                    "region": REGION,
                    "created_at": "2026-12-02T03:00:04Z",
                    "verified": None,
                },
                "newest_verified": {
                    "recovery_point": "nightly/i-01/20261128T0300Z",
                    "region": REGION,
                    "created_at": "2026-11-28T03:00:04Z",
                    "verified": "2026-11-29T05:00:00Z",
                },
                "copies": [
                    {
                        "region": "us-west-2",
                        "newest": {
                            "recovery_point": "nightly/i-01/20261202T0300Z",
                            "region": "us-west-2",
                            "created_at": "2026-12-02T03:09:00Z",
                            "verified": None,
                        },
                    }
                ],
                "rpo": "met",
                "period_seconds": 86400,
                "rpo_reason": "newest is 8h 59m old: within 2 x 1d",
                "held": 0,
            }
        ]
        assert first["held"] == 0
        assert [r["status"] for r in data["resources"]] == [
            "unprotected",
            "unprotected",
            "unprotected",
            "rpo-missed",
            "protected",
            "protected",
        ]
        assert data["warnings"][0]["policy"] == "broken"

    def test_equal_coverage_gives_equal_text(self) -> None:
        assert render_coverage(REPORT, "json") == render_coverage(REPORT, "json")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown coverage format 'yaml'"):
        render_coverage(REPORT, "yaml")  # type: ignore[arg-type]


def test_markdown_and_text_are_reached_through_render_coverage() -> None:
    assert render_coverage(REPORT, "markdown") == render_markdown(REPORT)
    assert render_coverage(REPORT, "text", color=True) == render_text(REPORT, color=True)
