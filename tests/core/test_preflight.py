"""The checks a run makes before it changes anything, as pure rules (no AWS, no clock)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from smartvault.core.model import AuditRecord
from smartvault.core.model import Plan
from smartvault.core.model import PlanWarning
from smartvault.core.model import PolicySet
from smartvault.core.model import PolicySlot
from smartvault.core.preflight import only_policies
from smartvault.core.preflight import saved_plan_mismatch
from smartvault.core.preflight import saved_plan_out_of_time
from smartvault.core.preflight import unknown_policies
from tests.factories import ACCOUNT
from tests.factories import CREATE
from tests.factories import DELETE
from tests.factories import REGION
from tests.factories import make_policy
from tests.factories import utc

AT = utc(2026, 11, 28, 3)
POLICIES = PolicySet((make_policy("nightly"), make_policy("weekly")), files=("p.yaml",))


def make_plan(**overrides: object) -> Plan:
    return dataclasses.replace(
        Plan(at=AT, generated_at=AT, account_id=ACCOUNT, regions=(REGION,)), **overrides
    )


class TestUnknownPolicies:
    def test_a_misspelt_name_is_refused_with_the_closest_known_one(self):
        message = unknown_policies(("nighty",), POLICIES, ["p.yaml"], 'the event\'s "policies"')

        assert message == (
            "no policy named nighty (did you mean nightly?) in p.yaml: fix the event's "
            '"policies" (known: nightly, weekly)'
        )

    def test_a_name_like_none_is_listed_without_a_guess(self):
        message = unknown_policies(("zzz", "weekly"), POLICIES, ["a", "b"], "the request")

        assert message == "no policy named zzz in a, b: fix the request (known: nightly, weekly)"

    @pytest.mark.parametrize("names", [(), ("weekly", "nightly")], ids=["none", "known"])
    def test_known_names_or_none_pass(self, names):
        assert unknown_policies(names, POLICIES, ["p.yaml"], "the request") is None


def test_only_policies_keeps_the_named_policies_and_the_warnings_of_no_policy():
    other = dataclasses.replace(CREATE, policy="weekly")
    plan = make_plan(
        policies=(PolicySlot("prod-nightly", "p.yaml", AT), PolicySlot("weekly", "p.yaml", AT)),
        actions=(CREATE, other),
        warnings=(PlanWarning("account-wide"), PlanWarning("weekly's", policy="weekly")),
    )

    mine = only_policies(plan, ["prod-nightly"])

    assert [p.name for p in mine.policies] == ["prod-nightly"]
    assert mine.actions == (CREATE,)
    assert [w.message for w in mine.warnings] == ["account-wide"]


class TestSavedPlanOutOfTime:
    @pytest.mark.parametrize(
        "now",
        [AT - timedelta(minutes=5), AT, AT + timedelta(hours=24)],
        ids=["five-minutes-ahead", "now", "a-day-old"],
    )
    def test_a_plan_inside_the_skew_and_the_age_passes(self, now):
        assert saved_plan_out_of_time(make_plan(), now, timedelta(hours=24)) is None

    def test_a_plan_evaluated_ahead_of_the_clock_is_refused(self):
        message = saved_plan_out_of_time(make_plan(), AT - timedelta(hours=2), timedelta(days=1))

        assert message is not None
        assert message.startswith(
            "the saved plan is evaluated at 2026-11-28T03:00:00Z, 2.0h in the future "
            "(this machine's clock says 2026-11-28T01:00:00Z)"
        )

    def test_a_plan_older_than_max_age_is_refused_in_days_past_two(self):
        message = saved_plan_out_of_time(make_plan(), AT + timedelta(days=3), timedelta(days=2))

        assert message is not None
        assert "3.0d ago, more than --max-plan-age 2d; nothing was done" in message


class TestSavedPlanMismatch:
    def test_the_same_account_and_actions_pass(self):
        assert saved_plan_mismatch(make_plan(), make_plan(), []) is None

    def test_another_account_is_refused_before_the_differences(self):
        fresh = make_plan(account_id="210987654321")

        message = saved_plan_mismatch(make_plan(), fresh, ["+ create x"])

        assert message == (
            f"the saved plan is for account {ACCOUNT}, but these credentials are "
            "for account 210987654321: nothing was done"
        )

    def test_differences_are_listed_one_a_line(self):
        message = saved_plan_mismatch(make_plan(), make_plan(), ["+ create a", "- delete b"])

        assert message is not None
        assert "Planning again at 2026-11-28T03:00:00Z gives:\n  + create a\n  - delete b\n" in (
            message
        )


def _record(action, run_id: str, outcome: str = "succeeded") -> AuditRecord:
    return AuditRecord(
        run_id=run_id,
        timestamp=AT,
        action=action.type,
        outcome=outcome,
        policy=action.policy,
        region=action.region,
        resource_id=action.resource_id,
        recovery_point=action.recovery_point,
    )


class TestSavedPlanStaleCause:
    """A stale saved plan names its cause: the audit log's run, or the policy files."""

    def test_a_plan_whose_actions_all_succeeded_in_one_run_was_already_applied(self):
        saved = make_plan(actions=(CREATE, DELETE))
        records = [_record(CREATE, "run-a"), _record(DELETE, "run-a")]

        message = saved_plan_mismatch(saved, make_plan(), ["- no longer creates x"], records)

        assert message is not None
        assert message.startswith(
            "the saved plan was already applied by run run-a; nothing was done."
        )

    def test_a_plan_some_of_whose_actions_succeeded_was_partly_applied(self):
        saved = make_plan(actions=(CREATE, DELETE))
        records = [_record(CREATE, "run-a"), _record(DELETE, "run-b", outcome="failed")]

        message = saved_plan_mismatch(saved, make_plan(), ["- x"], records)

        assert message is not None
        assert message.startswith(
            "the saved plan was partly applied by run run-a: 1 of its 2 actions succeeded;"
        )

    def test_other_policy_files_are_named_both_ways(self):
        saved = make_plan(policies=(PolicySlot("nightly", "./policies/a.yaml", AT),))
        fresh = make_plan(policies=(PolicySlot("nightly", "other/b.yaml", AT),))

        message = saved_plan_mismatch(saved, fresh, ["- x"])

        assert message is not None
        assert message.startswith(
            "the saved plan was made from other policy files than these: the plan's: "
            "policies/a.yaml; given now: other/b.yaml; nothing was done."
        )

    def test_the_same_files_spelt_alike_are_not_other_files(self):
        saved = make_plan(policies=(PolicySlot("nightly", "./policies/a.yaml", AT),))
        fresh = make_plan(policies=(PolicySlot("weekly", "policies/a.yaml", AT),))

        message = saved_plan_mismatch(saved, fresh, ["- x"])

        assert message is not None
        assert message.startswith(
            "the policies changed since the plan was made (only in the plan: nightly; "
            "only now: weekly)"
        )
