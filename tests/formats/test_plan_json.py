"""The plan as JSON: its shape, its schema and the round trip."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from smartvault.core.model import ArchiveAction
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import HeldBy
from smartvault.core.model import HeldDelete
from smartvault.core.model import Kept
from smartvault.core.model import Orphan
from smartvault.core.model import Plan
from smartvault.core.model import PlanWarning
from smartvault.core.model import PolicyRegion
from smartvault.core.model import PolicySlot
from smartvault.core.model import Skipped
from smartvault.core.model import VerifyAction
from smartvault.core.plan_diff import compare_actions
from smartvault.core.times import format_time
from smartvault.core.times import parse_time
from smartvault.errors import PlanFileError
from smartvault.formats import plan_json
from tests.factories import ARCHIVE
from tests.factories import COPY
from tests.factories import CREATE
from tests.factories import DELETE
from tests.factories import VERIFY
from tests.factories import make_plan
from tests.factories import utc

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA_PATH = ROOT / "smartvault" / "schemas" / "plan.schema.json"
KEPT_BY = (
    "keep_last",
    "max_age",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "future",
    "disabled",
    "pending",
    "no_copy_rule",
    "hold",
)


@functools.cache
def schema_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


# --- strategies ---------------------------------------------------------------

_names = st.text(max_size=12)
_ids = st.lists(_names, max_size=3).map(tuple)
_times = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001 - bounds for aware values below
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]
    ),
)
_tags = st.dictionaries(_names, st.text(max_size=30), max_size=4)
_resource_names = st.none() | st.text(max_size=20)
_retentions = st.sampled_from(
    [
        None,
        "default",
        "retention",
        "retention_by_tag[0]",
        "retention_by_tag[12]+retention_tag",
        "default+retention_tag",
        "copies[1]",
    ]
)
_lines = {"resource_name": _resource_names, "retention": _retentions}
_policy_regions = st.dictionaries(
    _names, st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=3
).map(lambda d: tuple(PolicyRegion(r, *d[r]) for r in sorted(d)))

_creates = st.builds(
    CreateAction,
    region=_names,
    policy=_names,
    resource_id=_names,
    resource_type=st.sampled_from(["instance", "volume"]),
    recovery_point=_names,
    slot=_times,
    volume_ids=_ids,
    reason=st.text(max_size=40),
    tags=_tags,
    exclude_boot_volume=st.booleans(),
    full_tag_values=_tags,
    **_lines,
)


def _existing(cls: type[DeleteAction] | type[ArchiveAction]) -> st.SearchStrategy[Any]:
    return st.builds(
        cls,
        region=_names,
        policy=_names,
        resource_id=_names,
        recovery_point=_names,
        snapshot_ids=_ids,
        created_at=_times,
        reason=st.text(max_size=40),
        **_lines,
    )


_held_by = st.one_of(
    st.builds(
        HeldBy,
        rule=st.just("max_delete_fraction"),
        limit=st.sampled_from([0.5, 0.25, 1]),
        deletes=st.integers(1, 10**6),
        completed=st.integers(1, 10**6),
        resource_id=_names,
    ),
    st.builds(
        HeldBy,
        rule=st.just("max_deletes"),
        limit=st.integers(1, 1000),
        deletes=st.integers(1, 10**6),
    ),
)
_deletes = st.one_of(
    _existing(DeleteAction),
    st.tuples(_existing(DeleteAction), _held_by).map(
        lambda pair: dataclasses.replace(pair[0], safety_lifted=pair[1])
    ),
)

_verifies = st.builds(
    VerifyAction,
    region=_names,
    policy=_names,
    resource_id=_names,
    recovery_point=_names,
    snapshot_ids=_ids,
    created_at=_times,
    reason=st.text(max_size=40),
    timeout=st.integers(1, 12 * 60).map(lambda minutes: timedelta(minutes=minutes)),
    **_lines,
)

_copies = st.builds(
    CopyAction,
    region=_names,
    policy=_names,
    resource_id=_names,
    recovery_point=_names,
    snapshot_ids=_ids,
    created_at=_times,
    target_region=_names,
    reason=st.text(max_size=40),
    kms_key_id=st.none() | _names,
    **_lines,
)

plans = st.builds(
    Plan,
    at=_times,
    generated_at=_times,
    account_id=_names,
    regions=_ids,
    policies=st.lists(
        st.builds(
            PolicySlot,
            name=_names,
            file=_names,
            slot=st.none() | _times,
            regions=_policy_regions,
        ),
        max_size=3,
    ).map(tuple),
    actions=st.lists(
        st.one_of(_creates, _deletes, _existing(ArchiveAction), _copies, _verifies),
        max_size=5,
    ).map(tuple),
    held_deletes=st.lists(st.builds(HeldDelete, _existing(DeleteAction), _held_by), max_size=2).map(
        tuple
    ),
    allow_deletes=st.lists(_names, max_size=2, unique=True).map(lambda names: tuple(sorted(names))),
    kept=st.lists(
        st.builds(
            Kept,
            region=_names,
            policy=_names,
            resource_id=_names,
            recovery_point=_names,
            snapshot_ids=_ids,
            created_at=_times,
            kept_by=st.lists(st.sampled_from(KEPT_BY), max_size=3).map(tuple),
            verified=st.none() | _times,
            **_lines,
        ),
        max_size=3,
    ).map(tuple),
    skipped=st.lists(
        st.builds(
            Skipped,
            region=_names,
            policy=_names,
            resource_id=_names,
            recovery_point=_names,
            snapshot_ids=_ids,
            reason=_names,
            **_lines,
        ),
        max_size=2,
    ).map(tuple),
    orphans=st.lists(
        st.builds(
            Orphan,
            region=_names,
            policy=_names,
            recovery_point=_names,
            snapshot_ids=_ids,
            created_at=_times,
        ),
        max_size=2,
    ).map(tuple),
    warnings=st.lists(
        st.builds(
            PlanWarning,
            message=_names,
            policy=st.none() | _names,
            resource_id=st.none() | _names,
            region=st.none() | _names,
        ),
        max_size=2,
    ).map(tuple),
)

PROPERTY = settings(max_examples=100, deadline=None)


# --- shape --------------------------------------------------------------------


class TestPlanToDict:
    def test_plan_to_dict_writes_the_documented_shape(self) -> None:
        named = {"resource_name": "web-1", "retention": "retention_by_tag[0]+retention_tag"}
        data = plan_json.plan_to_dict(
            make_plan(
                policies=(
                    PolicySlot(
                        "prod-nightly",
                        "policies/prod.yaml",
                        utc(2026, 11, 28, 2),
                        (PolicyRegion("us-east-1", 12, 1), PolicyRegion("us-west-2", 3, 0)),
                    ),
                ),
                actions=(
                    dataclasses.replace(CREATE, **named),
                    dataclasses.replace(DELETE, **named),
                    dataclasses.replace(COPY, resource_name=None, retention="copies[0]"),
                ),
            )
        )

        assert list(data) == [
            "format_version",
            "at",
            "generated_at",
            "account_id",
            "regions",
            "policies",
            "allow_deletes",
            "actions",
            "held_deletes",
            "kept",
            "skipped",
            "orphans",
            "warnings",
            "summary",
        ]
        assert data["format_version"] == 1
        assert data["at"] == "2026-11-28T17:00:00Z"
        assert data["generated_at"] == "2026-11-28T17:00:02Z"
        assert data["policies"] == [
            {
                "name": "prod-nightly",
                "file": "policies/prod.yaml",
                "slot": "2026-11-28T02:00:00Z",
                "selected": 15,
                "excluded": 1,
                "regions": {
                    "us-east-1": {"selected": 12, "excluded": 1},
                    "us-west-2": {"selected": 3, "excluded": 0},
                },
            }
        ]
        assert data["actions"][0] == {
            "type": "create",
            "region": "us-east-1",
            "policy": "prod-nightly",
            "resource_id": "i-0abc",
            "resource_name": "web-1",
            "resource_type": "instance",
            "volume_ids": ["vol-1", "vol-2"],
            "recovery_point": "prod-nightly/i-0abc/20261128T0200Z",
            "slot": "2026-11-28T02:00:00Z",
            "tags": {"CreatedBy": "SmartVault", "smartvault:policy": "prod-nightly"},
            "exclude_boot_volume": False,
            "retention": "retention_by_tag[0]+retention_tag",
            "reason": CREATE.reason,
        }
        assert data["actions"][1] == {
            "type": "delete",
            "region": "us-east-1",
            "policy": "prod-nightly",
            "resource_id": "i-0abc",
            "resource_name": "web-1",
            "recovery_point": "prod-nightly/i-0abc/20261119T0200Z",
            "snapshot_ids": ["snap-1", "snap-2"],
            "created_at": "2026-11-19T02:00:03Z",
            "retention": "retention_by_tag[0]+retention_tag",
            "reason": "older than max_age 7d; not kept by keep_last 3",
        }
        assert list(data["actions"][2]) == [
            "type",
            "region",
            "policy",
            "resource_id",
            "resource_name",
            "recovery_point",
            "snapshot_ids",
            "created_at",
            "target_region",
            "kms_key_id",
            "retention",
            "reason",
        ]
        assert (data["actions"][2]["resource_name"], data["actions"][2]["retention"]) == (
            None,
            "copies[0]",
        )
        assert data["kept"][0]["kept_by"] == ["keep_last", "daily"]
        assert data["skipped"][0]["reason"] == "in use by AMI ami-0123"
        assert data["orphans"][0] == {
            "region": "us-east-1",
            "policy": "old-policy",
            "recovery_point": "old-policy/i-9/20250101T0000Z",
            "snapshot_ids": ["snap-9"],
            "created_at": "2025-01-01T00:00:04Z",
        }
        assert data["warnings"] == [
            {
                "message": "backups are failing",
                "policy": "prod-nightly",
                "resource_id": "i-0abc",
                "region": "us-east-1",
            }
        ]
        assert data["summary"] == {
            "create": 1,
            "delete": 1,
            "archive": 0,
            "copy": 1,
            "verify": 0,
            "kept": 1,
            "skipped": 1,
        }

    def test_a_verify_action_names_its_snapshots_and_its_time_limit_in_seconds(self) -> None:
        assert plan_json.action_to_dict(VERIFY) == {
            "type": "verify",
            "region": "us-west-2",
            "policy": "prod-nightly",
            "resource_id": "i-0abc",
            "resource_name": None,
            "recovery_point": "prod-nightly/i-0abc/20261127T0200Z",
            "snapshot_ids": ["snap-13", "snap-14"],
            "created_at": "2026-11-27T02:10:04Z",
            "timeout_seconds": 2700,
            "retention": None,
            "reason": "no verified recovery point yet",
        }
        assert plan_json.plan_to_dict(make_plan(actions=(VERIFY,)))["summary"]["verify"] == 1

    def test_a_timeout_with_a_fraction_of_a_second_is_refused_as_a_bug(self) -> None:
        odd = dataclasses.replace(VERIFY, timeout=timedelta(seconds=1.5))

        with pytest.raises(ValueError, match="not a whole number of seconds"):
            plan_json.action_to_dict(odd)

    def test_each_kept_entry_says_when_it_was_verified_or_null(self) -> None:
        base = make_plan().kept[0]
        verified = dataclasses.replace(base, verified=utc(2026, 11, 28, 3, 12, 9))

        data = plan_json.plan_to_dict(make_plan(kept=(base, verified)))

        assert [k["verified"] for k in data["kept"]] == [None, "2026-11-28T03:12:09Z"]
        assert list(data["kept"][0])[-3:] == ["kept_by", "retention", "verified"]

    def test_full_tag_values_are_written_only_when_a_tag_was_cut(self) -> None:
        cut = dataclasses.replace(CREATE, full_tag_values={"smartvault:devices": "x" * 300})

        plain = plan_json.action_to_dict(CREATE)
        with_full = plan_json.action_to_dict(cut)

        assert "full_tag_values" not in plain
        assert with_full["full_tag_values"] == {"smartvault:devices": "x" * 300}
        assert list(with_full)[-1] == "full_tag_values"

    def test_a_disabled_policy_has_a_null_slot(self) -> None:
        plan = make_plan(policies=(PolicySlot("old", "policies/old.yaml", None),))

        assert plan_json.plan_to_dict(plan)["policies"] == [
            {
                "name": "old",
                "file": "policies/old.yaml",
                "slot": None,
                "selected": 0,
                "excluded": 0,
                "regions": {},
            }
        ]

    def test_a_plan_written_before_counts_and_rules_is_refused_as_older(self) -> None:
        data = plan_json.plan_to_dict(make_plan())
        for action in data["actions"]:
            del action["retention"]
        with pytest.raises(PlanFileError, match="written by an older SmartVault") as caught:
            plan_json.plan_from_dict(data, source="old.json")
        assert "smartvault plan --out FILE" in str(caught.value)
        data = plan_json.plan_to_dict(make_plan())
        del data["policies"][0]["regions"]
        with pytest.raises(PlanFileError, match="written by an older SmartVault"):
            plan_json.plan_from_dict(data, source="old.json")

    def test_policy_totals_that_are_not_the_sums_of_their_regions_are_refused(self) -> None:
        slot = PolicySlot("p", "p.yaml", None, (PolicyRegion("us-east-1", 2, 1),))
        data = plan_json.plan_to_dict(make_plan(policies=(slot,)))
        data["policies"][0]["selected"] = 3

        with pytest.raises(PlanFileError) as caught:
            plan_json.plan_from_dict(data, source="p.json")

        assert str(caught.value) == (
            "p.json is not a SmartVault plan: policies[0]: selected 3 and excluded 1 do not "
            "match the sums of its regions (2 and 1)"
        )

    @pytest.mark.parametrize(
        "retention", ["Retention", "retention_by_tag[x]", "copies[0]+retention_tag", ""]
    )
    def test_a_retention_that_names_no_rule_is_refused(self, retention: str) -> None:
        data = plan_json.plan_to_dict(make_plan())
        data["kept"][0]["retention"] = retention

        with pytest.raises(PlanFileError, match=r"kept\[0\]\.retention"):
            plan_json.plan_from_dict(data)

    def test_a_warning_without_context_writes_nulls(self) -> None:
        plan = make_plan(warnings=(PlanWarning("no regions"),))

        assert plan_json.plan_to_dict(plan)["warnings"] == [
            {"message": "no regions", "policy": None, "resource_id": None, "region": None}
        ]


class TestTimes:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (utc(2026, 11, 28, 17, 0, 2), "2026-11-28T17:00:02Z"),
            (utc(2026, 11, 28, 17, 0, 2, 123000), "2026-11-28T17:00:02.123Z"),
            (utc(2026, 11, 28, 17, 0, 2, 123456), "2026-11-28T17:00:02.123456Z"),
            (
                datetime(2026, 11, 28, 18, 0, 2, tzinfo=timezone(timedelta(hours=1))),
                "2026-11-28T17:00:02Z",
            ),
        ],
        ids=["seconds", "milliseconds", "microseconds", "other-offset"],
    )
    def test_times_are_written_in_utc_with_z_and_only_nonzero_fractions(
        self, value: datetime, text: str
    ) -> None:
        assert format_time(value) == text
        assert parse_time(text) == value

    def test_a_naive_time_is_refused_as_a_bug(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            format_time(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test

    @pytest.mark.parametrize(
        "text", ["2026-11-28T17:00:02", "2026-13-01T00:00:00Z", "2026-11-28T17:00+01:00Z", "soon"]
    )
    def test_parse_time_rejects_what_is_not_a_utc_time(self, text: str) -> None:
        with pytest.raises(ValueError, match="is not a UTC time"):
            parse_time(text)


# --- schema -------------------------------------------------------------------


class TestSchema:
    def test_the_schema_is_a_valid_draft_2020_12_schema_with_an_id(self) -> None:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

        Draft202012Validator.check_schema(schema)
        assert schema["$id"]
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def test_the_published_schema_is_a_relative_symlink_to_the_packaged_one(self) -> None:
        link = ROOT / "schemas" / "plan.schema.json"

        assert link.is_symlink()
        assert os.readlink(link) == "../smartvault/schemas/plan.schema.json"
        assert link.read_bytes() == SCHEMA_PATH.read_bytes()

    def test_the_packaged_schema_is_the_one_plan_json_uses(self) -> None:
        assert plan_json.plan_schema() == json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

    def test_the_sample_plan_validates_against_the_schema(self) -> None:
        verified = dataclasses.replace(make_plan().kept[0], verified=utc(2026, 11, 28, 3))
        plan = make_plan(actions=(CREATE, DELETE, ARCHIVE, COPY, VERIFY), kept=(verified,))

        errors = list(schema_validator().iter_errors(plan_json.plan_to_dict(plan)))

        assert errors == []

    def test_a_point_kept_by_a_hold_validates_and_reads_back(self) -> None:
        held = dataclasses.replace(make_plan().kept[0], kept_by=("hold",))
        plan = make_plan(kept=(held,))
        data = plan_json.plan_to_dict(plan)

        assert list(schema_validator().iter_errors(data)) == []
        assert plan_json.loads(json.dumps(data)).kept[0].kept_by == ("hold",)

    def test_the_schema_rejects_a_field_it_does_not_describe(self) -> None:
        data = plan_json.plan_to_dict(make_plan())
        data["actions"][1]["force"] = True

        assert not schema_validator().is_valid(data)

    @PROPERTY
    @given(plans)
    def test_every_produced_plan_validates_against_the_schema(self, plan: Plan) -> None:
        errors = [e.message for e in schema_validator().iter_errors(plan_json.plan_to_dict(plan))]

        assert errors == []


# --- round trip ---------------------------------------------------------------


class TestRoundTrip:
    @PROPERTY
    @given(plans)
    def test_plan_from_dict_inverts_plan_to_dict(self, plan: Plan) -> None:
        assert plan_json.plan_from_dict(plan_json.plan_to_dict(plan)) == plan

    @PROPERTY
    @given(plans)
    def test_loads_inverts_dumps_and_dumps_is_stable(self, plan: Plan) -> None:
        text = plan_json.dumps(plan)

        again = plan_json.loads(text)

        assert again == plan
        assert plan_json.dumps(again) == text

    @PROPERTY
    @given(plans)
    def test_a_plan_compared_with_its_own_round_trip_has_no_differences(self, plan: Plan) -> None:
        assert compare_actions(plan, plan_json.loads(plan_json.dumps(plan))) == []

    @PROPERTY
    @given(plans)
    def test_dumps_writes_exactly_what_the_standard_library_writes(self, plan: Plan) -> None:
        expected = json.dumps(plan_json.plan_to_dict(plan), indent=2, ensure_ascii=False)

        assert plan_json.dumps(plan) == expected + "\n"

    @PROPERTY
    @given(plans)
    def test_write_streams_the_text_of_dumps_in_pieces(self, plan: Plan) -> None:
        pieces: list[str] = []

        plan_json.write(plan, pieces.append)

        assert "".join(pieces) == plan_json.dumps(plan)
        # entry by entry: no piece is the whole list of actions or kept entries
        assert len(pieces) > len(plan.actions) + len(plan.kept)

    def test_dumps_is_indented_json_ending_in_one_newline(self) -> None:
        text = plan_json.dumps(make_plan())

        assert text.startswith('{\n  "format_version": 1,\n  "at": "2026-11-28T17:00:00Z",\n')
        assert text.endswith("}\n")
        assert not text.endswith("\n\n")

    def test_equal_plans_with_tags_in_another_order_dump_identically(self) -> None:
        reordered = dataclasses.replace(
            CREATE, tags={"CreatedBy": "SmartVault", "smartvault:policy": "prod-nightly"}
        )
        assert reordered == CREATE

        assert plan_json.dumps(make_plan(actions=(reordered,))) == plan_json.dumps(
            make_plan(actions=(CREATE,))
        )

    def test_non_ascii_text_is_written_as_is(self) -> None:
        plan = make_plan(warnings=(PlanWarning("Größe ✓"),))

        assert "Größe ✓" in plan_json.dumps(plan)

    def test_verify_actions_and_verified_kept_entries_survive_the_round_trip(self) -> None:
        verified = dataclasses.replace(make_plan().kept[0], verified=utc(2026, 11, 28, 3, 0, 1))
        plan = make_plan(actions=(CREATE, VERIFY, DELETE), kept=(verified,))

        text = plan_json.dumps(plan)
        again = plan_json.loads(text)

        assert again == plan
        assert again.actions[1] == VERIFY
        assert again.kept[0].verified == utc(2026, 11, 28, 3, 0, 1)
        assert plan_json.dumps(again) == text

    def test_millisecond_snapshot_times_survive_the_round_trip(self) -> None:
        kept = Kept(
            "us-east-1",
            "p",
            "vol-1",
            "p/vol-1/x",
            ("snap-1",),
            utc(2026, 1, 1, 0, 0, 4, 512000),
            ("keep_last",),
        )

        plan = plan_json.loads(plan_json.dumps(make_plan(kept=(kept,))))

        assert plan.kept[0].created_at == utc(2026, 1, 1, 0, 0, 4, 512000)


# --- reading errors -----------------------------------------------------------


class TestLoadsErrors:
    def _broken(self, change: Any) -> str:
        data = plan_json.plan_to_dict(make_plan(actions=(CREATE, DELETE, ARCHIVE, DELETE)))
        change(data)
        return json.dumps(data)

    def test_an_unknown_action_type_names_where_and_what_is_allowed(self) -> None:
        text = self._broken(lambda d: d["actions"][3].update(type="remove"))

        with pytest.raises(PlanFileError) as info:
            plan_json.loads(text)

        assert str(info.value) == (
            "plan.json is not a SmartVault plan: actions[3].type: "
            "'remove' is not one of create, delete, archive, copy, verify"
        )

    def test_the_message_names_the_source_it_was_given(self) -> None:
        text = self._broken(lambda d: d["actions"][1].pop("snapshot_ids"))

        with pytest.raises(
            PlanFileError,
            match=r"^saved\.json is not a SmartVault plan: "
            r"actions\[1\]: 'snapshot_ids' is a required property$",
        ):
            plan_json.loads(text, source="saved.json")

    def test_an_unknown_field_is_rejected(self) -> None:
        text = self._broken(lambda d: d["actions"][0].update(force=True))

        with pytest.raises(PlanFileError, match=r"actions\[0\]: Additional properties .*'force'"):
            plan_json.loads(text)

    def test_an_unknown_kept_by_rule_is_rejected(self) -> None:
        text = self._broken(lambda d: d["kept"][0].update(kept_by=["forever"]))

        with pytest.raises(
            PlanFileError, match=r"kept\[0\]\.kept_by\[0\]: 'forever' is not one of keep_last"
        ):
            plan_json.loads(text)

    def test_a_verify_action_without_a_positive_time_limit_is_refused(self) -> None:
        for change, problem in (
            (lambda a: a.pop("timeout_seconds"), r"'timeout_seconds' is a required property"),
            (lambda a: a.update(timeout_seconds=0), r"timeout_seconds: 0 is less than"),
        ):
            data = plan_json.plan_to_dict(make_plan(actions=(VERIFY,)))
            change(data["actions"][0])

            with pytest.raises(PlanFileError, match=problem):
                plan_json.loads(json.dumps(data))

    def test_a_kept_entry_must_say_whether_it_is_verified(self) -> None:
        text = self._broken(lambda d: d["kept"][0].pop("verified"))

        with pytest.raises(PlanFileError, match=r"kept\[0\]: 'verified' is a required property"):
            plan_json.loads(text)

    def test_a_time_in_another_format_is_rejected_readably(self) -> None:
        text = self._broken(lambda d: d.update(at="2026-11-28 17:00"))

        with pytest.raises(
            PlanFileError,
            match=r"at: '2026-11-28 17:00' is not a UTC time like 2026-11-28T17:00:02Z",
        ):
            plan_json.loads(text)

    def test_an_impossible_date_is_rejected(self) -> None:
        text = self._broken(lambda d: d.update(at="2026-13-28T17:00:00Z"))

        with pytest.raises(PlanFileError, match=r"'2026-13-28T17:00:00Z' is not a UTC time"):
            plan_json.loads(text)

    def test_a_plan_from_a_newer_smartvault_is_refused_with_advice(self) -> None:
        text = self._broken(lambda d: d.update(format_version=2, future_field=[]))

        with pytest.raises(
            PlanFileError, match=r"written by a newer SmartVault \(plan format_version 2"
        ):
            plan_json.loads(text)

    def test_format_version_zero_is_not_a_plan(self) -> None:
        text = self._broken(lambda d: d.update(format_version=0))

        with pytest.raises(PlanFileError, match=r"format_version: 0 should be 1"):
            plan_json.loads(text)

    def test_text_that_is_not_json_is_refused(self) -> None:
        with pytest.raises(PlanFileError, match=r"^plan\.json is not valid JSON \(Expecting value"):
            plan_json.loads("not json")

    def test_duplicate_keys_are_refused(self) -> None:
        with pytest.raises(PlanFileError, match="duplicate key 'at'"):
            plan_json.loads('{"at": "a", "at": "b"}')

    def test_json_that_is_not_an_object_is_not_a_plan(self) -> None:
        with pytest.raises(
            PlanFileError, match=r"not a SmartVault plan: \[\] is not of type 'object'"
        ):
            plan_json.loads("[]")

    def test_a_summary_that_disagrees_with_the_contents_is_refused(self) -> None:
        text = self._broken(lambda d: d["summary"].update(delete=1))

        with pytest.raises(PlanFileError, match=r"summary .* does not match its contents"):
            plan_json.loads(text)

    def test_many_problems_are_summarised(self) -> None:
        with pytest.raises(PlanFileError, match=r"\(and \d+ more problems\)$"):
            plan_json.loads("{}")


def test_a_plan_saved_before_the_breaker_has_neither_key_and_still_loads() -> None:
    data = plan_json.plan_to_dict(make_plan(actions=(DELETE,)))
    del data["allow_deletes"], data["held_deletes"]

    plan = plan_json.plan_from_dict(data)

    assert (plan.allow_deletes, plan.held_deletes) == ((), ())
    assert plan.actions == (DELETE,)


def test_a_held_deletion_without_its_rule_is_not_a_plan() -> None:
    data = plan_json.plan_to_dict(make_plan())
    data["held_deletes"] = [plan_json.action_to_dict(DELETE)]

    with pytest.raises(PlanFileError, match=r"held_deletes\[0\].*held_by"):
        plan_json.plan_from_dict(data)
