"""The deployment's CloudWatch alarms and its catch-up schedule: pure template fragments.

The alarms watch the metrics the function writes as Embedded Metric Format log lines
(DESIGN §8: namespace ``SmartVault``, dimensions ``Policy`` and ``Region``), plus Lambda's
own ``Errors`` and the dead-letter queue's depth. Per enabled policy and per region it works
in: actions failed, deletes held, restore tests failed (policies with ``verify``), and the
RPO alarm on ``NewestRecoveryPointAgeSeconds`` above two schedule periods, missing data
breaching. docs/deploy.md says what each one means and what to check first.

The schedule period of a ``rate()`` is its interval; of a ``cron()``, the largest gap between
consecutive firings over one year from :data:`PERIOD_WINDOW_START` (so a weekday-only or
month-end schedule, and daylight saving time in its zone, count), plus the gap to the first
firing after that year (so a yearly schedule has a period).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import lru_cache
from typing import Any

from smartvault.core import schedules
from smartvault.core.model import Policy

Json = dict[str, Any]

NAMESPACE = "SmartVault"
#: The catch-up schedule's default: what DESIGN §6 promises.
DEFAULT_CATCH_UP = "rate(1 hour)"

#: Where a cron schedule's period is measured: one year from here, in every zone.
PERIOD_WINDOW_START = datetime(2025, 7, 1, tzinfo=UTC)
PERIOD_WINDOW = timedelta(days=366)
#: At most this many firings are read (a cron firing about every 9 minutes fills a year);
#: a schedule that fires more often is measured over its first this-many firings.
PERIOD_MAX_FIRINGS = 60_000

#: CloudWatch: an alarm looks back at most 7 days (Period x EvaluationPeriods).
MAX_ALARM_WINDOW = 7 * 86400
#: How long a failure alarm stays in ALARM after the run that raised it, at the least.
FAILURE_WINDOW = 3600
#: The longest a run lasts (Lambda's limit): a catch-up run that starts late by this much
#: still falls inside a failure alarm's window.
LONGEST_RUN = 900
#: CloudWatch allows five actions per alarm state.
MAX_ALARM_ACTIONS = 5


@lru_cache(maxsize=256)
def schedule_period(expression: str, timezone: str = "UTC") -> timedelta | None:
    """The longest time between two firings of the schedule; None if it fires at most once.

    Raises :class:`~smartvault.core.schedules.ScheduleError` for an invalid expression.
    """
    trigger = schedules.parse(expression, timezone)
    if isinstance(trigger, schedules.RateTrigger):
        return trigger.interval
    previous = trigger.next_after(PERIOD_WINDOW_START) or trigger.next_after(
        datetime(1970, 1, 1, tzinfo=UTC)
    )
    if previous is None:
        return None
    end = PERIOD_WINDOW_START + PERIOD_WINDOW
    longest: timedelta | None = None
    for _ in range(PERIOD_MAX_FIRINGS):
        following = trigger.next_after(previous)
        if following is None:
            break
        gap = following - previous
        longest = gap if longest is None or gap > longest else longest
        if previous >= end:
            break
        previous = following
    return longest


def human(span: timedelta) -> str:
    """``2d``, ``1d 6h``, ``90m``: a span as an operator reads it in an alarm description."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return " ".join(parts) or "0s"


def camel_ids(prefix: str, names: Iterable[str]) -> dict[str, str]:
    """Name -> CloudFormation logical id ``<prefix><CamelCase>``, unique and stable.

    Logical ids are alphanumeric only, so ``a-b`` and ``ab`` (or ``x--y`` and ``x-y``) would
    collide once hyphens go; CloudFormation also treats ids that differ only in case as
    clashing in places. Colliding names get a short hash of the full name appended, which
    keeps every id stable for as long as the name stays (a new name that clashes with an
    old one renames the old one's id: that resource is simply replaced).
    """
    names = list(names)
    base = {n: prefix + "".join(w[:1].upper() + w[1:] for w in n.split("-")) for n in names}
    seen: dict[str, int] = {}
    for candidate in base.values():
        seen[candidate.lower()] = seen.get(candidate.lower(), 0) + 1
    ids: dict[str, str] = {}
    for name, candidate in base.items():
        if seen[candidate.lower()] > 1:
            candidate += "X" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()
        ids[name] = re.sub(r"[^A-Za-z0-9]", "", candidate)
    return ids


# --- what the alarms are built from ------------------------------------------------


@dataclass(frozen=True)
class AlarmPlan:
    """Everything the alarms of one template depend on, decided once.

    ``regions`` are the regions the function works in, or ``()`` when the template does not
    know them (the stack's own region then, ``AWS::Region``). ``catch_up`` is the catch-up
    schedule's expression, or None when it is off.
    """

    policies: tuple[Policy, ...]
    regions: tuple[str, ...]
    catch_up: str | None

    def policy_regions(self, policy: Policy) -> list[str | None]:
        """The regions to watch the policy in; None stands for the stack's own region."""
        if not self.regions:
            return [None]
        return [r for r in self.regions if policy.applies_to_region(r)]

    @property
    def catch_up_period(self) -> timedelta | None:
        return None if self.catch_up is None else schedule_period(self.catch_up)

    @property
    def failure_window(self) -> int:
        """Seconds a failure alarm looks back: an hour, or a catch-up interval and a run."""
        period = self.catch_up_period
        if period is None:
            return FAILURE_WINDOW
        window = int(period.total_seconds()) + LONGEST_RUN
        return min(max(FAILURE_WINDOW, _whole_minutes(window)), 86400)


def _whole_minutes(seconds: float) -> int:
    return max(60, -(-int(seconds) // 60) * 60)


def _region_key(region: str | None) -> str:
    return region or "stack-region"


def _region_value(region: str | None) -> Any:
    return region if region is not None else {"Ref": "AWS::Region"}


def _topic_region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def topic_conditions(policies: Sequence[Policy]) -> dict[str, Json]:
    """``StackIn<Region>`` for each region holding a policy's topic.

    A CloudWatch alarm can only notify an SNS topic in its own region (PutMetricAlarm
    refuses any other), and the stack's region is known only when it is deployed: an alarm
    of a policy whose topic lies elsewhere notifies the stack's alarm topic instead.
    """
    regions = sorted(
        {
            region
            for p in policies
            if p.notify is not None
            for region in [_topic_region(p.notify.sns_topic_arn)]
            if region is not None
        }
    )
    ids = camel_ids("StackIn", regions)
    return {ids[r]: {"Fn::Equals": [{"Ref": "AWS::Region"}, r]} for r in regions}


def _topic_action(arn: str) -> Any:
    region = _topic_region(arn)
    if region is None:
        return arn
    (condition,) = camel_ids("StackIn", [region]).values()
    return {"Fn::If": [condition, arn, {"Ref": "AlarmTopic"}]}


def policy_actions(policy: Policy, region: str | None) -> list[Any]:
    """Where the policy's alarms go: its own topic (in the stack's region), else ours.

    ``region`` None: the alarm exists only when the stack's region is one of the policy's
    ``regions``; if that is the topic's region alone, the topic is in the stack's region.
    """
    if policy.notify is None:
        return [{"Ref": "AlarmTopic"}]
    arn = policy.notify.sns_topic_arn
    if region is None and policy.regions and policy.regions == (_topic_region(arn),):
        return [arn]
    return [_topic_action(arn)]


def function_actions(policies: Sequence[Policy]) -> tuple[list[Any], bool]:
    """Where the function's own alarms go: our topic and every policy's (if they fit).

    A failing function fails every policy, so its alarms go wherever the policies' alarms
    go. The second value is False when the policies name more topics than CloudWatch's
    five actions per alarm allow, in which case only our topic is notified.
    """
    topics = sorted({p.notify.sns_topic_arn for p in policies if p.notify is not None})
    if len(topics) + 1 > MAX_ALARM_ACTIONS:
        return [{"Ref": "AlarmTopic"}], False
    actions: list[Any] = [{"Ref": "AlarmTopic"}]
    for arn in topics:
        region = _topic_region(arn)
        if region is None:
            actions.append(arn)
        else:
            (condition,) = camel_ids("StackIn", [region]).values()
            actions.append({"Fn::If": [condition, arn, {"Ref": "AWS::NoValue"}]})
    return actions, True


# --- the alarms ----------------------------------------------------------------------


def policy_alarms(plan: AlarmPlan) -> tuple[Json, list[str]]:
    """The per-policy, per-region alarms (logical id -> resource), and warnings."""
    resources: Json = {}
    warnings: list[str] = []
    keys = [
        (policy, region)
        for policy in plan.policies
        if policy.enabled
        for region in plan.policy_regions(policy)
    ]
    suffixes = camel_ids("", [f"{p.name}-{_region_key(r)}" for p, r in keys])
    for policy, region in keys:
        suffix = suffixes[f"{policy.name}-{_region_key(region)}"]
        alarms, warning = _alarms_of(plan, policy, region)
        if warning:
            warnings.append(warning)
        for kind, alarm in alarms.items():
            if region is None and policy.regions:
                # The stack's region is known only at deployment: watch the policy there
                # only if it works there.
                alarm["Condition"] = region_condition_id(policy)
            resources[f"{kind}Alarm{suffix}"] = alarm
    return resources, list(dict.fromkeys(warnings))


def _alarms_of(plan: AlarmPlan, policy: Policy, region: str | None) -> tuple[Json, str]:
    """The alarms of one policy in one region, by kind, and a warning (or "")."""
    watched = _watched(policy, region)
    alarms: Json = {
        "ActionsFailed": _count_alarm(
            plan,
            policy,
            region,
            "ActionsFailed",
            f"actions of policy {policy.name} failed in {watched}. First check: the run's "
            "notification or `smartvault audit list --since 1d --policy "
            f"{policy.name}` (the error of each failed action); the runbook is in "
            "docs/deploy.md, Alarms.",
        ),
        "DeletesHeld": _count_alarm(
            plan,
            policy,
            region,
            "DeletesHeld",
            f"policy {policy.name} planned more deletions in {watched} than its safety "
            "rules allow, so none were made. First check: `smartvault plan` (held_deletes "
            "says which rule held them); if they are right, a person applies them with "
            f"`smartvault apply --allow-deletes {policy.name}`.",
        ),
    }
    if policy.verify is not None:
        alarms["VerificationsFailed"] = _count_alarm(
            plan,
            policy,
            region,
            "VerificationsFailed",
            f"a restore test of policy {policy.name} failed in {watched}: a recovery "
            "point did not become volumes that reached available. First check: "
            f"`smartvault audit list --since 1d --policy {policy.name}` (the verify "
            "records and their error).",
        )
    rpo, warning = _rpo_alarm(plan, policy, region)
    if rpo is not None:
        alarms["Rpo"] = rpo
    return alarms, warning


def region_condition_id(policy: Policy) -> str:
    (found,) = camel_ids("StackInRegionsOf", [policy.name]).values()
    return found


def region_conditions(plan: AlarmPlan) -> dict[str, Json]:
    """``StackInRegionsOf<Policy>`` for policies with ``regions`` when the template knows
    no regions: true when the stack's region (the function's only one) is among them."""
    if plan.regions:
        return {}
    conditions: dict[str, Json] = {}
    for policy in plan.policies:
        if policy.enabled and policy.regions:
            tests: list[Json] = [
                {"Fn::Equals": [{"Ref": "AWS::Region"}, r]} for r in policy.regions
            ]
            conditions[region_condition_id(policy)] = _any_of(tests)
    return conditions


def _any_of(tests: list[Json]) -> Json:
    """Fn::Or takes 2 to 10 conditions: nest for more, and one needs none."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) <= 10:
        return {"Fn::Or": tests}
    return {"Fn::Or": [_any_of(tests[i : i + 9]) for i in range(0, len(tests), 9)]}


def _watched(policy: Policy, region: str | None) -> str:
    return region if region is not None else "the stack's region"


def _dimensions(policy: Policy, region: str | None) -> list[Json]:
    return [
        {"Name": "Policy", "Value": policy.name},
        {"Name": "Region", "Value": _region_value(region)},
    ]


def _alarm_name(policy: Policy, region: str | None, what: str) -> Any:
    where = region if region is not None else "${AWS::Region}"
    return {"Fn::Sub": f"${{AWS::StackName}}-{policy.name}-{where}-{what}"}


def _above_zero(
    name: Any,
    description: str,
    *,
    namespace: str,
    metric: str,
    dimensions: list[Json],
    statistic: str,
    period: int,
    actions: list[Any],
) -> Json:
    """An alarm on any ``metric`` above 0 in one window. No data is no failure (a
    function that stopped running is the RPO alarm's job)."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "AlarmDescription": description[:1024],
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": dimensions,
            "Statistic": statistic,
            "Period": period,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": actions,
        },
    }


def _count_alarm(
    plan: AlarmPlan, policy: Policy, region: str | None, metric: str, description: str
) -> Json:
    """Any ``metric`` above 0 in the window: a run that did not do what the policy asks."""
    slug = re.sub(r"(?<!^)(?=[A-Z])", "-", metric).lower()
    return _above_zero(
        _alarm_name(policy, region, slug),
        f"SmartVault: {description}",
        namespace=NAMESPACE,
        metric=metric,
        dimensions=_dimensions(policy, region),
        statistic="Sum",
        period=plan.failure_window,
        actions=policy_actions(policy, region),
    )


def _rpo_alarm(plan: AlarmPlan, policy: Policy, region: str | None) -> tuple[Json | None, str]:
    """The RPO alarm: the oldest newest recovery point older than two schedule periods.

    One datapoint over the threshold fires it at once. Missing data is breaching, over a
    window of two schedule periods (at most the 7 days CloudWatch looks back): every run of
    the policy (its own schedule, and the catch-up schedule) writes the metric, so a window
    with none means the function no longer runs, and the alarm fires when the recovery
    points could have grown that old.
    """
    try:
        period = schedule_period(policy.schedule.expression, policy.schedule.timezone)
    except schedules.ScheduleError:
        period = None  # validation reports it; the policy creates nothing
    if period is None:
        return None, (
            f"policy {policy.name}: its schedule {policy.schedule.expression} does not fire "
            "repeatedly, so it has no RPO alarm"
        )
    threshold = 2 * period
    window = min(_whole_minutes(threshold.total_seconds()), MAX_ALARM_WINDOW)
    catch_up = plan.catch_up_period
    between_runs = period if catch_up is None else min(period, catch_up)
    warning = ""
    if between_runs.total_seconds() + LONGEST_RUN > window:
        advice = (
            "keep the catch-up schedule on"
            if catch_up is None
            else "expect it to fire when a run is late"
        )
        warning = (
            f"policy {policy.name}: its runs come up to {human(between_runs)} apart and may "
            f"last 15 minutes, longer than the {human(timedelta(seconds=window))} its RPO "
            f"alarm waits for data (two schedule periods, at most the 7 days CloudWatch "
            f"looks back), so the alarm may fire between runs; {advice}"
        )
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": _alarm_name(policy, region, "rpo"),
            "AlarmDescription": (
                f"SmartVault: policy {policy.name} in {_watched(policy, region)} has a "
                f"resource whose newest completed recovery point is older than "
                f"{human(threshold)} (two schedule periods of {human(period)}), or the "
                f"function wrote no metric for {human(timedelta(seconds=window))}. First "
                f"check: `smartvault coverage` and `smartvault plan` (which resources, and "
                "why), then whether the function still runs (its logs, its Errors alarm)."
            )[:1024],
            "Namespace": NAMESPACE,
            "MetricName": "NewestRecoveryPointAgeSeconds",
            "Dimensions": _dimensions(policy, region),
            "Statistic": "Maximum",
            "Period": window,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "Threshold": int(threshold.total_seconds()),
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "breaching",
            "AlarmActions": policy_actions(policy, region),
            "OKActions": policy_actions(policy, region),
        },
    }, warning


def function_alarms(plan: AlarmPlan) -> tuple[Json, list[str]]:
    """The function's own alarms: Lambda ``Errors``, and the dead-letter queue's depth."""
    actions, all_topics = function_actions([p for p in plan.policies if p.enabled])
    warnings = []
    if not all_topics:
        warnings.append(
            f"the policies name more than {MAX_ALARM_ACTIONS - 1} SNS topics: the function's "
            "own alarms (errors, dead-letter queue) notify only the stack's AlarmTopic; "
            "subscribe to it (AlarmEmail)"
        )
    resources = {
        "FunctionErrorsAlarm": _above_zero(
            {"Fn::Sub": "${AWS::StackName}-function-errors"},
            "SmartVault: a run of the function failed (an action failed, deletions were "
            "held, or the run could not start: invalid policies or event, no access). First "
            'check: the function\'s log group, `filter level = "ERROR"` in Logs Insights '
            "(docs/deploy.md, Alarms).",
            namespace="AWS/Lambda",
            metric="Errors",
            dimensions=[{"Name": "FunctionName", "Value": {"Ref": "Function"}}],
            statistic="Sum",
            period=plan.failure_window,
            actions=actions,
        ),
        "DeadLetterQueueAlarm": _above_zero(
            {"Fn::Sub": "${AWS::StackName}-dead-letter-queue"},
            "SmartVault: an invocation is in the dead-letter queue: a run failed (see the "
            "function's errors alarm), or a schedule could not start the function after "
            "Scheduler's retries. First check: the message in the queue (DeadLetterQueueUrl "
            "output); for an undelivered one, whether the function exists and its reserved "
            "concurrency is not 0.",
            namespace="AWS/SQS",
            metric="ApproximateNumberOfMessagesVisible",
            dimensions=[
                {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
            ],
            statistic="Maximum",
            period=300,
            actions=actions,
        ),
    }
    return resources, warnings


def alarm_topic() -> Json:
    """The stack's own topic: alarms of policies without a topic, and the function's."""
    return {
        "AlarmTopic": {
            "Type": "AWS::SNS::Topic",
            # Not encrypted with the AWS managed key alias/aws/sns: its key policy does not
            # let CloudWatch publish, and an alarm's message carries no secret.
            "Properties": {"DisplayName": "SmartVault alarms"},
        },
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlarmEmail",
            "Properties": {
                "TopicArn": {"Ref": "AlarmTopic"},
                "Protocol": "email",
                "Endpoint": {"Ref": "AlarmEmail"},
            },
        },
    }


# --- the catch-up schedule -------------------------------------------------------------


def catch_up_schedule(expression: str) -> Json:
    """One schedule that runs every policy: it finishes what the last runs left.

    Planning is idempotent, so it only does what is due and not done: a create that failed
    (while its slot is current), a copy whose source has completed since, deletions a
    deadline cut, a restore test that is due. The event is ``{"dry_run": false}``: no
    ``policies`` key means every policy (an empty list would be refused).
    """
    return {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "Description": (
                "SmartVault catch-up: runs every policy, finishing what the last runs left "
                "(failed creates, copies, deletions past a deadline)"
            ),
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": {"Fn::GetAtt": ["Function", "Arn"]},
                "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
                "Input": json.dumps({"dry_run": False}),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}},
            },
        },
    }
