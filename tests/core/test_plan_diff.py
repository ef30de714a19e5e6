"""The saved-plan comparison: which actions a fresh plan adds, drops or changes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from smartvault.core.plan_diff import compare_actions
from tests.factories import ARCHIVE
from tests.factories import COPY
from tests.factories import CREATE
from tests.factories import DELETE
from tests.factories import VERIFY
from tests.factories import make_plan
from tests.factories import utc


class TestCompareActions:
    def test_identical_actions_compare_equal(self) -> None:
        saved = make_plan(actions=(CREATE, DELETE, ARCHIVE, COPY, VERIFY))
        fresh = make_plan(
            actions=(VERIFY, COPY, ARCHIVE, DELETE, CREATE), generated_at=utc(2027, 1, 1)
        )

        assert compare_actions(saved, fresh) == []

    def test_a_renamed_resource_does_not_make_a_plan_stale_but_another_rule_does(self) -> None:
        """The name only describes; the retention rule is why the action is what it is."""
        saved = make_plan(actions=(dataclasses.replace(DELETE, resource_name="web-1"),))
        renamed = make_plan(actions=(dataclasses.replace(DELETE, resource_name="web-2"),))
        other_rule = make_plan(
            actions=(dataclasses.replace(DELETE, resource_name="web-1", retention="retention"),)
        )

        assert compare_actions(saved, renamed) == []
        assert compare_actions(saved, other_rule) == [
            "~ delete prod-nightly/i-0abc/20261119T0200Z for i-0abc retention now 'retention' "
            "(was none)"
        ]

    def test_a_new_deletion_is_reported_with_a_plus(self) -> None:
        lines = compare_actions(make_plan(actions=(CREATE,)), make_plan())

        assert lines == [
            "+ would now also delete prod-nightly/i-0abc/20261119T0200Z (snap-1, snap-2) "
            "of i-0abc in us-east-1: older than max_age 7d; not kept by keep_last 3"
        ]

    def test_a_deletion_no_longer_planned_is_reported_with_a_minus(self) -> None:
        lines = compare_actions(make_plan(), make_plan(actions=(CREATE,)))

        assert lines == [
            "- no longer deletes prod-nightly/i-0abc/20261119T0200Z (snap-1, snap-2) "
            "of i-0abc in us-east-1 (gone or changed)"
        ]

    def test_a_create_that_appeared_or_went_is_reported_with_its_volumes(self) -> None:
        added = compare_actions(make_plan(actions=()), make_plan(actions=(CREATE,)))
        gone = compare_actions(make_plan(actions=(CREATE,)), make_plan(actions=()))

        assert added == [
            "+ would now also create prod-nightly/i-0abc/20261128T0200Z (vol-1, vol-2) "
            f"of i-0abc in us-east-1: {CREATE.reason}"
        ]
        assert gone == [
            "- no longer creates prod-nightly/i-0abc/20261128T0200Z (vol-1, vol-2) "
            "of i-0abc in us-east-1 (gone or changed)"
        ]

    def test_a_create_covering_other_volumes_is_reported_as_changed(self) -> None:
        grown = dataclasses.replace(CREATE, volume_ids=("vol-1", "vol-2", "vol-3"))

        lines = compare_actions(make_plan(), make_plan(actions=(grown, DELETE)))

        assert lines == [
            "~ create prod-nightly/i-0abc/20261128T0200Z for i-0abc "
            "now covers vol-1, vol-2, vol-3 (was vol-1, vol-2)"
        ]

    def test_changed_tags_and_reason_are_each_reported(self) -> None:
        changed = dataclasses.replace(CREATE, tags={"CreatedBy": "SmartVault"}, reason="due")

        lines = compare_actions(make_plan(), make_plan(actions=(changed, DELETE)))

        assert lines == [
            "~ create prod-nightly/i-0abc/20261128T0200Z for i-0abc reason now 'due' "
            f"(was {CREATE.reason!r})",
            '~ create prod-nightly/i-0abc/20261128T0200Z for i-0abc tags now {"CreatedBy": '
            '"SmartVault"} (was {"CreatedBy": "SmartVault", "smartvault:policy": "prod-nightly"})',
        ]

    def test_a_copy_to_another_region_is_another_action(self) -> None:
        elsewhere = dataclasses.replace(COPY, target_region="eu-west-1")

        lines = compare_actions(make_plan(actions=(COPY,)), make_plan(actions=(elsewhere,)))

        assert [line[:2] for line in lines] == ["- ", "+ "]
        assert "from us-east-1 to us-west-2" in lines[0]
        assert "from us-east-1 to eu-west-1" in lines[1]

    def test_a_changed_kms_key_of_a_copy_is_reported(self) -> None:
        rekeyed = dataclasses.replace(COPY, kms_key_id=None)

        lines = compare_actions(make_plan(actions=(COPY,)), make_plan(actions=(rekeyed,)))

        assert lines == [
            "~ copy prod-nightly/i-0abc/20261127T0200Z for i-0abc to us-west-2 "
            "kms_key_id now none (was 'alias/backup')"
        ]

    def test_a_changed_creation_time_is_reported(self) -> None:
        later = dataclasses.replace(DELETE, created_at=utc(2026, 11, 19, 2, 0, 9))

        lines = compare_actions(make_plan(actions=(DELETE,)), make_plan(actions=(later,)))

        assert lines == [
            "~ delete prod-nightly/i-0abc/20261119T0200Z for i-0abc "
            "created_at now 2026-11-19T02:00:09Z (was 2026-11-19T02:00:03Z)"
        ]

    def test_a_duplicated_action_is_reported_once_as_extra(self) -> None:
        lines = compare_actions(make_plan(actions=(DELETE,)), make_plan(actions=(DELETE, DELETE)))

        assert len(lines) == 1
        assert lines[0].startswith("+ would now also delete")

    def test_a_restore_test_that_appeared_or_went_is_reported_like_any_action(self) -> None:
        added = compare_actions(make_plan(), make_plan(actions=(CREATE, VERIFY, DELETE)))
        gone = compare_actions(make_plan(actions=(CREATE, VERIFY, DELETE)), make_plan())

        assert added == [
            "+ would now also verify prod-nightly/i-0abc/20261127T0200Z (snap-13, snap-14) "
            "of i-0abc in us-west-2: no verified recovery point yet"
        ]
        assert gone == [
            "- no longer verifies prod-nightly/i-0abc/20261127T0200Z (snap-13, snap-14) "
            "of i-0abc in us-west-2 (gone or changed)"
        ]

    def test_a_restore_test_of_another_region_or_point_is_another_action(self) -> None:
        east = dataclasses.replace(VERIFY, region="us-east-1")
        older = dataclasses.replace(VERIFY, recovery_point="prod-nightly/i-0abc/20261126T0200Z")

        for other in (east, older):
            lines = compare_actions(make_plan(actions=(VERIFY,)), make_plan(actions=(other,)))
            assert [line[0] for line in lines] == ["-", "+"]

    def test_a_changed_time_limit_or_reason_of_a_restore_test_is_reported(self) -> None:
        changed = dataclasses.replace(
            VERIFY,
            timeout=timedelta(hours=2),
            reason="newest verified recovery point x was verified y, more than every 7d ago",
        )

        lines = compare_actions(make_plan(actions=(VERIFY,)), make_plan(actions=(changed,)))

        assert lines == [
            "~ verify prod-nightly/i-0abc/20261127T0200Z for i-0abc reason now "
            "'newest verified recovery point x was verified y, more than every 7d ago' "
            "(was 'no verified recovery point yet')",
            "~ verify prod-nightly/i-0abc/20261127T0200Z for i-0abc timeout now 2h (was 45m)",
        ]

    def test_kept_and_warnings_do_not_count_as_differences(self) -> None:
        fresh = make_plan(kept=(), warnings=(), skipped=(), orphans=())

        assert compare_actions(make_plan(), fresh) == []
