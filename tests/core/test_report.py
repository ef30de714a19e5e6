"""Notifications: when to send, and what they say (no AWS: :mod:`smartvault.core.report`)."""

from __future__ import annotations

from typing import Any

import pytest

from smartvault.core.model import Notify
from smartvault.core.report import BODY_MAX_BYTES
from smartvault.core.report import FailedItem
from smartvault.core.report import PolicyRunSummary
from smartvault.core.report import RecoveryPointResult
from smartvault.core.report import SkippedItem
from smartvault.core.report import compose
from smartvault.core.report import should_notify

RP = "prod-nightly/i-0abc/20261128T0200Z"


def make_summary(**overrides: Any) -> PolicyRunSummary:
    fields: dict[str, Any] = {
        "policy": "prod-nightly",
        "run_id": "run-20261128T020004Z-1a2b",
        "regions": ("us-east-1",),
        "created": (RecoveryPointResult(RP, ("snap-1", "snap-2"), "us-east-1"),),
        "deleted": (
            RecoveryPointResult("prod-nightly/i-0abc/20261119T0200Z", ("snap-9",), "us-east-1"),
        ),
    }
    fields.update(overrides)
    return PolicyRunSummary(**fields)


FAILED = (FailedItem("prod-nightly/i-0def/20261128T0200Z", "SnapshotLimitExceeded: too many"),)


class TestShouldNotify:
    @pytest.mark.parametrize(
        ("on", "failed", "stopped_early", "expected"),
        [
            (("failure",), False, False, False),
            (("failure",), True, False, True),
            (("failure",), False, True, True),
            (("success",), False, False, True),
            (("success",), True, False, False),
            (("success",), False, True, False),
            (("always",), False, False, True),
            (("always",), True, False, True),
            (("failure", "success"), False, False, True),
            (("failure", "success"), True, False, True),
        ],
        ids=[
            "failure-mode-quiet-on-clean-run",
            "failure-mode-speaks-on-failed-action",
            "failure-mode-speaks-when-run-stopped-early",
            "success-mode-speaks-on-clean-run",
            "success-mode-quiet-on-failure",
            "success-mode-quiet-when-stopped-early",
            "always-on-clean-run",
            "always-on-failure",
            "both-on-clean-run",
            "both-on-failure",
        ],
    )
    def test_notify_on_modes_pick_the_runs_to_report(self, on, failed, stopped_early, expected):
        summary = make_summary(failed=FAILED if failed else (), stopped_early=stopped_early)
        assert should_notify(Notify("arn:aws:sns:us-east-1:1:t", on=on), summary) is expected

    def test_success_mode_confirms_a_run_with_nothing_to_do(self):
        summary = make_summary(created=(), deleted=())
        assert should_notify(Notify("arn:aws:sns:us-east-1:1:t", on=("success",)), summary)


class TestCompose:
    def test_body_lists_created_deleted_failed_and_skipped_with_errors(self):
        summary = make_summary(
            failed=FAILED,
            skipped=(SkippedItem("prod-nightly/i-0abc/20261001T0200Z", "in use by AMI ami-0123"),),
        )
        subject, body = compose(summary)
        assert subject == "SmartVault prod-nightly: FAILED (1 failed, 1 created, 1 deleted)"
        assert f"{RP} [us-east-1]: snap-1, snap-2" in body
        assert "prod-nightly/i-0abc/20261119T0200Z [us-east-1]: snap-9" in body
        assert "prod-nightly/i-0def/20261128T0200Z: SnapshotLimitExceeded: too many" in body
        assert "in use by AMI ami-0123" in body
        assert "Run id:   run-20261128T020004Z-1a2b" in body
        assert "smartvault audit list --since 1d --policy prod-nightly" in body

    def test_clean_run_subject_says_ok_and_dry_run_is_marked(self):
        subject, body = compose(make_summary(dry_run=True))
        assert subject == "[dry run] SmartVault prod-nightly: ok (1 created, 1 deleted)"
        assert "nothing was changed" in body

    def test_stopped_early_run_says_the_next_run_finishes(self):
        subject, body = compose(make_summary(stopped_early=True))
        assert ": INCOMPLETE" in subject
        assert "the next run does the rest" in body

    def test_stopped_run_lists_what_was_not_started_and_the_run_id_command(self):
        """A run with nothing done but work not started is never "nothing to do"."""
        summary = make_summary(
            created=(),
            deleted=(),
            stopped_early=True,
            not_started=(f"create {RP} [us-east-1]", "copy prod-nightly/i-0def/x [us-east-1]"),
        )
        subject, body = compose(summary)
        assert subject == "SmartVault prod-nightly: INCOMPLETE (2 not started)"
        assert "Nothing to do" not in body
        assert "Work remains: 2 action(s) were not started" in body
        assert f"Not started (2):\n  - create {RP} [us-east-1]\n" in body
        assert "smartvault audit list --run-id run-20261128T020004Z-1a2b" in body

    def test_not_started_alone_makes_the_run_not_ok(self):
        """Work left without a deadline (an audit table that broke) is reported as well."""
        summary = make_summary(not_started=(f"create {RP} [us-east-1]",))
        assert not summary.ok
        assert should_notify(Notify("arn:aws:sns:us-east-1:1:t", on=("failure",)), summary)
        assert ": INCOMPLETE" in compose(summary)[0]

    def test_failed_run_body_names_the_run_id_command(self):
        _, body = compose(make_summary(failed=FAILED))
        assert body.startswith("SmartVault policy prod-nightly: FAILED\n")
        assert "smartvault audit list --run-id run-20261128T020004Z-1a2b" in body

    def test_run_with_nothing_to_do_says_so(self):
        _, body = compose(make_summary(created=(), deleted=()))
        assert "Nothing to do" in body

    def test_subject_stays_under_100_ascii_characters_on_one_line(self):
        summary = make_summary(policy="p" * 63 + "-é\nx", failed=FAILED * 3)
        subject, _ = compose(summary)
        assert len(subject) < 100
        assert subject.isascii()
        assert all(" " <= c <= "~" for c in subject)
        assert subject.endswith("...")

    def test_long_lists_are_cut_with_a_count_of_the_rest(self):
        created = tuple(
            RecoveryPointResult(f"prod-nightly/i-{n:017x}/20261128T0200Z", (f"snap-{n}",))
            for n in range(250)
        )
        _, body = compose(make_summary(created=created))
        assert "Created (250):" in body
        assert "prod-nightly/i-00000000000000063/20261128T0200Z" in body  # the 100th
        assert "prod-nightly/i-00000000000000064/20261128T0200Z" not in body  # the 101st
        assert "... and 150 more (see the audit log)" in body

    def test_huge_errors_keep_the_body_within_the_sns_limit(self):
        failed = tuple(FailedItem(f"rp-{n}", "ü" * 5000) for n in range(5000))
        _, body = compose(make_summary(failed=failed))
        assert len(body.encode()) <= BODY_MAX_BYTES
        assert "Failed (5000):" in body
        assert "smartvault audit list --since 1d --policy prod-nightly" in body

    def test_a_body_too_big_even_when_lists_are_short_is_cut_at_the_sns_limit(self):
        huge = (RecoveryPointResult(RP, tuple(f"snap-{n:017x}" for n in range(20000))),)
        _, body = compose(make_summary(created=huge))
        assert len(body.encode()) <= BODY_MAX_BYTES
        assert body.endswith("(cut to fit one SNS message; see the audit log)\n")
        assert body.startswith("SmartVault policy prod-nightly: ok")
