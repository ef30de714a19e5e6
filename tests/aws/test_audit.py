"""The audit table: its layout, records, claims and queries (moto DynamoDB)."""

from __future__ import annotations

import itertools
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.aws.audit import AuditLog
from smartvault.aws.audit.table import TABLE_DEFINITION
from smartvault.core.audit_table import POLICY_INDEX
from smartvault.core.model import AuditRecord
from smartvault.core.times import format_timestamp
from smartvault.errors import AuditError
from tests.factories import Clock

TABLE = "smartvault-audit"
T0 = datetime(2026, 11, 28, 17, 0, 2, 123456, tzinfo=UTC)
LEASE = timedelta(minutes=15)


def make_record(**overrides) -> AuditRecord:
    fields = {
        "run_id": "run-1",
        "timestamp": T0,
        "action": "delete",
        "outcome": "pending",
        "policy": "nightly",
        "region": "us-east-1",
        "resource_id": "i-0001",
        "recovery_point": "nightly/i-0001/20261119T0300Z",
        "snapshot_ids": ("snap-1", "snap-2"),
        "reason": "older than max_age 7d",
        "actor": "arn:aws:iam::123456789012:user/ops",
    }
    fields.update(overrides)
    return AuditRecord(**fields)


def fail_with(code: str, status: int = 400):
    def hook(**_kwargs):
        raise ClientError(
            {
                "Error": {"Code": code, "Message": f"injected {code}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            "Injected",
        )

    return hook


@pytest.fixture
def ddb(aws):
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def log(ddb, clock) -> AuditLog:
    audit = AuditLog(ddb, TABLE, clock=clock, sleep=lambda _s: None)
    audit.ensure_table()
    return audit


class TestTable:
    def test_table_definition_matches_the_fixed_design(self):
        assert TABLE_DEFINITION["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        (index,) = TABLE_DEFINITION["GlobalSecondaryIndexes"]
        assert index["IndexName"] == "by-policy"
        assert index["KeySchema"] == [
            {"AttributeName": "policy", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert index["Projection"] == {"ProjectionType": "ALL"}
        assert TABLE_DEFINITION["BillingMode"] == "PAY_PER_REQUEST"
        assert TABLE_DEFINITION["TimeToLiveSpecification"]["AttributeName"] == "expires_at"

    def test_ensure_table_creates_an_on_demand_table_with_index_ttl_and_pitr(self, ddb, clock):
        audit = AuditLog(ddb, TABLE, clock=clock, sleep=lambda _s: None)
        assert audit.ensure_table() is True
        table = ddb.describe_table(TableName=TABLE)["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [POLICY_INDEX]
        assert table["SSEDescription"]["Status"] == "ENABLED"
        ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
        backups = ddb.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    def test_ensure_table_a_second_time_changes_nothing(self, ddb, clock):
        audit = AuditLog(ddb, TABLE, clock=clock, sleep=lambda _s: None)
        audit.ensure_table()
        writes: list[str] = []
        for op in ("CreateTable", "UpdateTimeToLive", "UpdateContinuousBackups", "UpdateTable"):
            ddb.meta.events.register(
                f"before-call.dynamodb.{op}", lambda op=op, **_k: writes.append(op)
            )
        assert audit.ensure_table() is False
        assert writes == []

    def test_ensure_table_waits_for_a_new_table_to_become_active(self, ddb, clock):
        sleeps: list[float] = []
        describes = {"n": 0}

        def still_creating(parsed, **_kwargs):
            describes["n"] += 1
            if "Table" in parsed and describes["n"] <= 3:
                parsed["Table"]["TableStatus"] = "CREATING"

        ddb.meta.events.register("after-call.dynamodb.DescribeTable", still_creating)
        audit = AuditLog(ddb, TABLE, clock=clock, sleep=sleeps.append)
        assert audit.ensure_table() is True
        assert len(sleeps) >= 2

    def test_a_table_with_another_key_schema_is_refused(self, ddb, clock):
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        audit = AuditLog(ddb, TABLE, clock=clock)
        with pytest.raises(AuditError, match=r"not a SmartVault audit table.*id \(S, HASH\)"):
            audit.ensure_table()
        with pytest.raises(AuditError, match="not a SmartVault audit table"):
            audit.check_writable()

    def test_check_writable_says_how_to_create_a_missing_table(self, ddb, clock):
        audit = AuditLog(ddb, TABLE, clock=clock)
        with pytest.raises(AuditError) as info:
            audit.check_writable()
        message = str(info.value)
        assert "audit table smartvault-audit not found in us-east-1" in message
        assert "smartvault audit init" in message

    def test_check_writable_passes_on_a_ready_table(self, log):
        log.check_writable()


class TestRecords:
    def test_a_record_is_keyed_by_utc_day_and_sortable_time(self, log, ddb):
        ref = log.records.write(make_record())
        assert ref.pk == "DAY#2026-11-28"
        assert ref.sk == "2026-11-28T17:00:02.123456Z#run-1#000000"
        item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": ref.pk}, "sk": {"S": ref.sk}})["Item"]
        assert item["policy"] == {"S": "nightly"}
        assert item["snapshot_ids"] == {"L": [{"S": "snap-1"}, {"S": "snap-2"}]}
        assert int(item["expires_at"]["N"]) == int((T0 + timedelta(days=400)).timestamp())

    def test_a_record_in_another_time_zone_lands_on_its_utc_day(self, log):
        berlin_just_after_midnight = datetime.fromisoformat("2026-11-29T00:30:00+01:00")
        ref = log.records.write(make_record(timestamp=berlin_just_after_midnight))
        assert ref.pk == "DAY#2026-11-28"
        assert ref.sk.startswith("2026-11-28T23:30:00.000000Z#")

    def test_records_round_trip_through_list(self, log):
        record = make_record(details={"smartvault:devices": '{"vol-1":"/dev/xvda"}'})
        log.records.write(record)
        assert log.records.query(T0 - timedelta(hours=1), T0 + timedelta(hours=1)) == [record]

    def test_update_outcome_sets_outcome_error_ids_and_merges_details(self, log):
        ref = log.records.write(make_record(details={"a": "1"}))
        log.records.update_outcome(
            ref, "failed", error="InternalError", snapshot_ids=["snap-9"], details={"b": "2"}
        )
        (stored,) = log.records.query(T0, T0)
        assert stored.outcome == "failed"
        assert stored.error == "InternalError"
        assert stored.snapshot_ids == ("snap-9",)
        assert stored.details == {"a": "1", "b": "2"}

    def test_update_outcome_of_a_record_that_does_not_exist_is_an_audit_error(self, log):
        from smartvault.core.model import AuditRecordRef

        with pytest.raises(AuditError, match="update an audit record"):
            log.records.update_outcome(AuditRecordRef("DAY#2026-11-28", "nope"), "succeeded")

    def test_a_failed_write_names_table_region_and_what_to_do(self, log, ddb):
        ddb.meta.events.register("before-call.dynamodb.PutItem", fail_with("AccessDeniedException"))
        with pytest.raises(AuditError) as info:
            log.records.write(make_record())
        message = str(info.value)
        assert "smartvault-audit (us-east-1)" in message
        assert "dynamodb:PutItem" in message
        assert info.value.__cause__ is not None


class TestList:
    def _fill(self, log):
        # Three days, two policies, and a claim that must never show up.
        for day in range(3):
            for policy in ("nightly", "weekly"):
                log.records.write(make_record(timestamp=T0 - timedelta(days=day), policy=policy))
        log.claims.acquire("nightly/i-0001/20261128T0300Z", "run-1", LEASE)

    def test_list_returns_records_in_the_range_newest_first(self, log):
        self._fill(log)
        found = log.records.query(T0 - timedelta(days=1, minutes=1), T0)
        day_before = T0 - timedelta(days=1)
        assert [r.timestamp for r in found] == [T0, T0, day_before, day_before]

    def test_list_by_policy_uses_the_index_and_never_returns_claims(self, log, ddb):
        self._fill(log)
        queries: list[str] = []
        ddb.meta.events.register(
            "before-parameter-build.dynamodb.Query",
            lambda params, **_k: queries.append(params.get("IndexName", "table")),
        )
        found = log.records.query(T0 - timedelta(days=7), T0, policy="nightly")
        assert [r.policy for r in found] == ["nightly"] * 3
        assert queries == [POLICY_INDEX]
        indexed = ddb.scan(TableName=TABLE, IndexName=POLICY_INDEX)["Items"]
        assert not [i for i in indexed if i["pk"]["S"].startswith("CLAIM#")]

    def test_one_malformed_item_never_makes_the_log_unreadable(self, log, ddb, caplog):
        """Items written by hand (or by a bug) are listed with what can be read, and the
        problem is named; one with no readable time at all is left out with a warning."""
        log.records.write(make_record(timestamp=T0))
        day = "DAY#" + T0.strftime("%Y-%m-%d")
        good_sk = format_timestamp(T0 - timedelta(minutes=5)) + "#run-x#000001"
        ddb.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": day},
                "sk": {"S": good_sk},
                "run_id": {"S": "run-x"},
                "timestamp": {"S": "yesterday-ish"},
                "action": {"N": "3"},
                "outcome": {"S": "succeeded"},
                "snapshot_ids": {"S": "snap-1"},
                "details": {"M": {"deleted": {"N": "1"}}},
            },
        )
        no_time_sk = format_timestamp(T0)[:14] + "??#run-y#000001"  # in range, not a time
        ddb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": day}, "sk": {"S": no_time_sk}, "outcome": {"S": "pending"}},
        )

        with caplog.at_level("WARNING", logger="smartvault.aws.audit"):
            found = log.records.query(T0 - timedelta(hours=1), T0 + timedelta(hours=1))

        assert [r.run_id for r in found] == ["run-1", "run-x"]
        odd = found[1]
        assert odd.timestamp == T0 - timedelta(minutes=5)  # the time in its key
        assert odd.outcome == "succeeded"
        assert "timestamp 'yesterday-ish'" in odd.details["unreadable"]
        assert "action" in odd.details["unreadable"]
        assert "snapshot_ids" in odd.details["unreadable"]
        warned = caplog.text
        assert f"{day} {good_sk}" in warned
        assert f"{day} {no_time_sk}" in warned
        assert "left out" in warned

    def test_a_pending_record_is_closed_only_while_pending_and_its_run_may_still_finish(self, log):
        ref = log.records.write(make_record(outcome="pending"))
        [(found_ref, found)] = log.records.pending_deletes(T0 - timedelta(days=7), T0)
        assert (found_ref, found.run_id) == (ref, "run-1")
        assert log.records.close_pending(ref, "succeeded", details={"resolution": "found gone"})
        assert log.records.pending_deletes(T0 - timedelta(days=7), T0) == []
        # A second close changes nothing; the run that wrote it may still record its outcome
        # (it knows best), and the note of the close stays.
        assert not log.records.close_pending(
            ref, "failed", error="x", details={"resolution": "other"}
        )
        log.records.update_outcome(ref, "succeeded", details={"deleted": "snap-1,snap-2"})
        [record] = log.records.query(T0 - timedelta(days=1), T0 + timedelta(days=1))
        assert (record.run_id, record.outcome) == ("run-1", "succeeded")
        assert record.details == {"resolution": "found gone", "deleted": "snap-1,snap-2"}

    def test_list_stops_at_the_limit(self, log):
        self._fill(log)
        assert len(log.records.query(T0 - timedelta(days=7), T0, limit=3)) == 3
        assert log.records.query(T0 - timedelta(days=7), T0, limit=0) == []

    def test_list_follows_pages(self, log, ddb):
        self._fill(log)

        def small_pages(params, **_kwargs):
            params["Limit"] = 1

        ddb.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
        assert len(log.records.query(T0 - timedelta(days=7), T0)) == 6

    def test_list_includes_a_record_at_exactly_until(self, log):
        log.records.write(make_record())
        assert len(log.records.query(T0, T0)) == 1
        assert log.records.query(T0 + timedelta(microseconds=1), T0 + timedelta(seconds=1)) == []


class TestClaims:
    RP = "nightly/i-0001/20261128T0300Z"

    def test_the_first_claim_wins_and_a_second_run_sees_it_held(self, log):
        assert log.claims.acquire(self.RP, "run-1", LEASE).status == "claimed"
        other = log.claims.acquire(self.RP, "run-2", LEASE)
        assert other.status == "held"
        assert other.run_id == "run-1"

    def test_the_holder_may_renew_its_own_claim(self, log, clock):
        log.claims.acquire(self.RP, "run-1", LEASE)
        clock.advance(minutes=10)
        renewed = log.claims.acquire(self.RP, "run-1", LEASE)
        assert renewed.status == "claimed"
        assert renewed.lease_until == clock.now + LEASE

    def test_an_expired_lease_may_be_claimed_by_another_run(self, log, clock):
        log.claims.acquire(self.RP, "run-1", LEASE)
        clock.advance(minutes=16)
        assert log.claims.acquire(self.RP, "run-2", LEASE).status == "claimed"
        assert log.claims.acquire(self.RP, "run-1", LEASE).status == "held"

    def test_renewal_extends_only_this_runs_own_claim_even_past_its_lease(self, log, clock):
        mine = log.claims.acquire(self.RP, "run-1", LEASE)
        clock.advance(minutes=20)  # lapsed, but nobody took it: still run-1's
        renewed = log.claims.renew(mine, "run-1", LEASE)
        assert renewed is not None
        assert renewed.lease_until == clock.now + LEASE
        stored = log.claims.get(self.RP).lease_until  # kept to the second
        assert stored == (clock.now + LEASE).replace(microsecond=0)

    def test_renewal_never_lands_on_a_claim_another_run_took_and_left_expired(self, log, clock):
        mine = log.claims.acquire(self.RP, "run-1", LEASE)
        clock.advance(minutes=16)
        assert log.claims.acquire(self.RP, "run-2", LEASE).status == "claimed"  # then run-2 dies
        clock.advance(minutes=16)
        assert log.claims.renew(mine, "run-1", LEASE) is None
        assert log.claims.get(self.RP).run_id == "run-2"
        log.claims.complete(self.RP, "run-2", ["snap-1"])
        assert log.claims.renew(mine, "run-1", LEASE) is None
        log.claims.release(self.RP)
        assert log.claims.renew(mine, "run-1", LEASE) is None
        assert log.claims.get(self.RP) is None

    def test_a_done_claim_is_never_claimed_again_even_after_its_lease(self, log, clock):
        log.claims.acquire(self.RP, "run-1", LEASE)
        log.claims.complete(self.RP, "run-1", ["snap-1", "snap-2"])
        clock.advance(days=1)
        done = log.claims.acquire(self.RP, "run-2", LEASE)
        assert done.status == "done"
        assert done.snapshot_ids == ("snap-1", "snap-2")
        assert done.run_id == "run-1"

    def test_only_one_run_takes_over_a_done_claim(self, log):
        log.claims.acquire(self.RP, "run-1", LEASE)
        log.claims.complete(self.RP, "run-1", ["snap-1"])
        seen_by_2 = log.claims.acquire(self.RP, "run-2", LEASE)
        seen_by_3 = log.claims.acquire(self.RP, "run-3", LEASE)
        assert log.claims.take_over(seen_by_2, "run-2", LEASE).status == "claimed"
        lost = log.claims.take_over(seen_by_3, "run-3", LEASE)
        assert lost.status == "held"
        assert lost.run_id == "run-2"

    def test_a_take_over_read_before_another_runs_whole_cycle_is_refused(self, log, clock):
        # ABA: run-3 read "done, version 1" before run-2 took the claim over, renewed it
        # (a plain claim writes version 1 again) and completed it with new snapshots.
        # The claim then reads "done, version 1" again: run-3 must still lose, or it
        # creates the recovery point a second time.
        log.claims.acquire(self.RP, "run-1", LEASE)
        log.claims.complete(self.RP, "run-1", ["snap-1"])
        clock.advance(minutes=16)
        seen_by_3 = log.claims.acquire(self.RP, "run-3", LEASE)
        seen_by_2 = log.claims.acquire(self.RP, "run-2", LEASE)
        assert log.claims.take_over(seen_by_2, "run-2", LEASE).status == "claimed"
        clock.advance(minutes=8)
        assert log.claims.acquire(self.RP, "run-2", LEASE).status == "claimed"  # renewal
        log.claims.complete(self.RP, "run-2", ["snap-2"])

        lost = log.claims.take_over(seen_by_3, "run-3", LEASE)

        assert lost.status == "done"
        assert lost.run_id == "run-2"
        assert lost.snapshot_ids == ("snap-2",)

    def test_completing_a_claim_another_run_took_is_an_audit_error(self, log, clock):
        log.claims.acquire(self.RP, "run-1", LEASE)
        clock.advance(minutes=16)
        log.claims.acquire(self.RP, "run-2", LEASE)
        with pytest.raises(AuditError, match="no longer held by run run-1"):
            log.claims.complete(self.RP, "run-1", ["snap-1"])

    def test_release_is_conditional_on_the_holder_and_on_done(self, log):
        log.claims.acquire(self.RP, "run-1", LEASE)
        assert log.claims.release(self.RP, "run-2") is False
        assert log.claims.release(self.RP, only_done=True) is False
        assert log.claims.release(self.RP, "run-1") is True
        assert log.claims.get(self.RP) is None
        assert log.claims.acquire(self.RP, "run-2", LEASE).status == "claimed"

    def test_a_claim_item_carries_no_policy_attribute(self, log, ddb):
        log.claims.acquire(self.RP, "run-1", LEASE)
        item = ddb.get_item(
            TableName=TABLE, Key={"pk": {"S": "CLAIM#" + self.RP}, "sk": {"S": "CLAIM"}}
        )["Item"]
        assert "policy" not in item
        assert item["state"] == {"S": "claimed"}
        assert int(item["lease_until"]["N"]) == int((T0 + LEASE).timestamp())


_runs = itertools.count()
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    reason=_text,
    error=_text,
    details=st.dictionaries(st.text(min_size=1, max_size=10), _text, max_size=3),
    ids=st.lists(st.from_regex(r"snap-[0-9a-f]{8}", fullmatch=True), max_size=4),
    microsecond=st.integers(0, 999_999),
)
def test_any_record_reads_back_exactly_as_written(log, reason, error, details, ids, microsecond):
    """The audit log keeps what it was given: free text, details and ids survive unchanged."""
    stamp = T0.replace(microsecond=microsecond)
    run_id = f"run-{next(_runs)}"  # the table outlives the examples: tell them apart
    record = make_record(
        run_id=run_id,
        timestamp=stamp,
        reason=reason,
        error=error,
        details=details,
        snapshot_ids=tuple(ids),
    )
    log.records.write(record)
    assert [r for r in log.records.query(stamp, stamp) if r.run_id == run_id] == [record]
    assert format_timestamp(stamp).endswith(f".{microsecond:06d}Z")
