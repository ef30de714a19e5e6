"""One boto3 session: clients (one per service and region), regions and the account id.

Every other part of ``aws/`` gets its clients from :class:`AwsSession` and wraps each
AWS call in :func:`~smartvault.aws.errors.translate_errors`, so no botocore exception
ever reaches a person: they see one line that says which call failed, where, and what
to do about it.

This module is imported by the Lambda handler, so it imports only boto3 and
botocore, and creates nothing at import time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import cast
from typing import overload

import boto3
import botocore.credentials
import botocore.session
from botocore.config import Config

from smartvault import __version__
from smartvault.aws.errors import THROTTLING_CODES
from smartvault.aws.errors import DeadlineReached
from smartvault.aws.errors import check_reply
from smartvault.aws.errors import translate_errors
from smartvault.aws.timestamps import parse_timestamp
from smartvault.errors import AwsError
from smartvault.settings import REGION_NAME_RE
from smartvault.settings import endpoint_url_problem

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sts import STSClient

    from smartvault.deadline import Deadline
    from smartvault.settings import Settings


#: Seconds. Generous enough for a 1,000-item DescribeSnapshots page on a busy account,
#: short enough that a black-holed endpoint does not eat a Lambda's 900 s.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
#: Retries after the first attempt (botocore's ``max_attempts``: 10 means 11 tries).
#: Adaptive mode also rate-limits on the client side once EC2 starts throttling,
#: which is what keeps a large run inside the per-account token buckets.
DEFAULT_MAX_ATTEMPTS = 10

#: The longest botocore waits before a retry (its backoff is capped at 20 s).
_MAX_RETRY_SLEEP = 20.0


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance where swapping two neighbours also counts as one edit."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def closest_region(name: str, known: Iterable[str]) -> str | None:
    """The known region ``name`` was probably meant to be, or ``None``.

    At most two edits away; ties go to the longer shared prefix (people get the start
    of a region right more often than not), then alphabetically.
    """

    def shared_prefix(candidate: str) -> int:
        return next(
            (i for i, (a, b) in enumerate(zip(name, candidate, strict=False)) if a != b),
            min(len(name), len(candidate)),
        )

    scored = sorted(
        (_edit_distance(name, candidate), -shared_prefix(candidate), candidate)
        for candidate in known
    )
    if scored and scored[0][0] <= 2:
        return scored[0][2]
    return None


def arn_partition(arn: str | None) -> str:
    """The partition of an ARN (``aws``, ``aws-us-gov``, ``aws-cn``); ``aws`` when unknown."""
    parts = (arn or "").split(":")
    return parts[1] if len(parts) > 5 and parts[0] == "arn" and parts[1] else "aws"


def role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


class AwsSession:
    """One boto3 session, its clients (one per service and region) and the account id.

    Nothing touches AWS or reads profiles until first used, so building one is free.
    Clients are created once and reused: creating an EC2 client costs ~150 ms and
    ~30 MB, and a per-client adaptive retry limiter only works if the client lives on.
    """

    def __init__(
        self,
        *,
        regions: Sequence[str] = (),
        profile: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        environ: Mapping[str, str] | None = None,
        deadline: Deadline | None = None,
        credentials: botocore.credentials.CredentialProvider | None = None,
    ) -> None:
        """``credentials``: where the session's credentials come from instead of boto3's
        usual chain (a role assumed by another session: :meth:`assume_role`)."""
        self._requested_regions = tuple(dict.fromkeys(regions))
        self._credentials = credentials
        self._environ = environ
        self._profile = profile
        self._endpoint_url = endpoint_url or None
        env = os.environ if environ is None else environ
        # AWS_ENDPOINT_URL, or one service's own (AWS_ENDPOINT_URL_EC2, ..._DYNAMODB).
        configured = {
            name: url
            for name, url in env.items()
            if name == "AWS_ENDPOINT_URL" or name.startswith("AWS_ENDPOINT_URL_")
        }
        for name, url in (("--endpoint-url", self._endpoint_url), *sorted(configured.items())):
            problem = endpoint_url_problem(url) if url else None
            if problem:
                raise AwsError(f"{name} {url!r} is not an endpoint URL: {problem}")
        # boto3 itself honours these variables; we only need to know that a simulator
        # is in use, to accept region names botocore has never heard of. The regions are
        # EC2's, so the EC2 endpoint is the one that counts.
        self._simulated = self._endpoint_url is not None or bool(
            env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_EC2")
        )
        self._deadline = deadline
        if deadline is not None:  # every request must fit in what is left of the run
            connect_timeout = min(connect_timeout, deadline.connect_timeout)
            read_timeout = min(read_timeout, deadline.read_timeout)
        self._timeouts = (connect_timeout, read_timeout, max_attempts)
        self._config = Config(
            retries={"mode": "adaptive", "max_attempts": max_attempts},
            user_agent_extra=f"smartvault/{__version__}",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._lock = threading.Lock()
        self._session: boto3.session.Session | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._known_regions: frozenset[str] | None = None
        self._account_id: str | None = None
        self._caller_arn: str | None = None

    @property
    def deadline(self) -> Deadline | None:
        return self._deadline

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> AwsSession:
        """Build from the engine's ``Settings`` (CLI flags or Lambda environment)."""
        return cls(
            regions=settings.regions,
            profile=settings.profile,
            endpoint_url=settings.endpoint_url,
            **overrides,
        )

    @property
    def endpoint_url(self) -> str | None:
        return self._endpoint_url

    @property
    def boto_session(self) -> boto3.session.Session:
        """The underlying boto3 session (created on first use; a bad profile fails here)."""
        with self._lock:
            return self._boto_session_locked()

    def _boto_session_locked(self) -> boto3.session.Session:
        if self._session is None:
            with translate_errors("sts", "", ""):
                core = _with_shared_models(botocore.session.get_session())
                # EC2's timestamps read without dateutil: a fifth of a large read's time.
                core.get_component("response_parser_factory").set_parser_defaults(
                    timestamp_parser=parse_timestamp
                )
                if self._credentials is not None:  # first, before the environment's
                    core.get_component("credential_provider").insert_before(
                        "env", self._credentials
                    )
                self._session = boto3.session.Session(
                    botocore_session=core, profile_name=self._profile
                )
        return self._session

    # --- regions ----------------------------------------------------------

    def regions(self) -> tuple[str, ...]:
        """The regions to work in: those asked for, else the profile/env default region.

        Every name is checked against the regions botocore knows for EC2.
        """
        regions = self._requested_regions
        if not regions:
            default = self.boto_session.region_name
            if not default:
                raise AwsError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
            regions = (default,)
        for region in regions:
            self.check_region(region)
        return regions

    def check_region(self, region: str) -> None:
        """Raise a readable :class:`AwsError` unless ``region`` is a region EC2 has."""
        known = self._ec2_regions()
        if region in known:
            return
        close = closest_region(region, known)
        if close:
            # Checked before the simulator escape hatch: a typo is a typo there too.
            raise AwsError(f"unknown region `{region}`; did you mean `{close}`?")
        if self._simulated and REGION_NAME_RE.match(region):
            # Local simulators accept any well-formed name.
            return
        if not REGION_NAME_RE.match(region):
            raise AwsError(
                f"unknown region `{region}`: a region name looks like `us-east-1`; "
                "check --region, AWS_DEFAULT_REGION and the policies' regions"
            )
        raise AwsError(
            f"unknown region `{region}`: this boto3 does not know it; check the name, "
            "or upgrade boto3 if the region is new"
        )

    def _ec2_regions(self) -> frozenset[str]:
        if self._known_regions is None:
            session = self.boto_session
            self._known_regions = frozenset(
                region
                for partition in session.get_available_partitions()
                for region in session.get_available_regions("ec2", partition_name=partition)
            )
        return self._known_regions

    # --- clients ----------------------------------------------------------

    @overload
    def client(self, service: Literal["ec2"], region: str) -> EC2Client: ...
    @overload
    def client(self, service: Literal["sts"], region: str) -> STSClient: ...
    @overload
    def client(self, service: Literal["dynamodb"], region: str) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["sns"], region: str) -> SNSClient: ...
    @overload
    def client(self, service: Literal["s3", "organizations"], region: str) -> Any: ...

    def client(self, service: str, region: str) -> Any:
        """The cached client for ``service`` in ``region``, created on first use."""
        return self._client(service, region, self._config)

    def ec2_for_changes(self, region: str) -> EC2Client:
        """An EC2 client that sends each request once, for the executor.

        ``CreateSnapshot(s)`` has no idempotency token: if botocore retried one after
        a 5xx or a lost response, the account could get a second snapshot. The
        executor retries throttling itself and looks for a lost create by its tag
        instead. Adaptive mode still paces requests when EC2 starts throttling.
        """
        once = self._config.merge(Config(retries={"mode": "adaptive", "total_max_attempts": 1}))
        return cast("EC2Client", self._client("ec2", region, once, cache_as="ec2:once"))

    def _client(self, service: str, region: str, config: Config, cache_as: str = "") -> Any:
        key = (cache_as or service, region)
        cached = self._clients.get(key)
        if cached is not None:
            return cached
        self.check_region(region)
        with self._lock:
            cached = self._clients.get(key)
            if cached is None:
                session = self._boto_session_locked()
                with translate_errors(service, "", region):
                    # boto3 sessions are not thread-safe; the lock serialises creation.
                    cached = session.client(
                        service,  # type: ignore[call-overload]
                        region_name=region,
                        endpoint_url=self._endpoint_url,
                        config=config,
                    )
                _refuse_other_servers(cached, service, region)
                if self._deadline is not None:
                    _keep_inside(cached, service, self._deadline, retries=cache_as != "ec2:once")
                self._clients[key] = cached
        return cached

    def account_id(self, region: str | None = None) -> str:
        """The account the credentials belong to (STS GetCallerIdentity, asked once).

        STS is asked in ``region``, else in the first of :meth:`regions`. It is the first
        call of every run, so it is tried twice only: an endpoint that does not answer
        (a wrong ``--endpoint-url``, no network) is reported in seconds instead of after
        a minute and a half of retries meant for throttling.
        """
        if self._account_id is None:
            region = region or self.regions()[0]
            quick = self._config.merge(
                Config(retries={"mode": "standard", "total_max_attempts": 2})
            )
            sts = cast("STSClient", self._client("sts", region, quick, cache_as="sts:quick"))
            with translate_errors("sts", "GetCallerIdentity", region):
                identity = sts.get_caller_identity()
            self._account_id = identity["Account"]
            self._caller_arn = identity.get("Arn")
        return self._account_id

    def assume_role(
        self, account: str, role_name: str, *, regions: Sequence[str], session_name: str
    ) -> AwsSession:
        """A session that works as role ``role_name`` of ``account``, in ``regions``.

        The role's ARN is in this session's partition (``aws``, ``aws-us-gov``, ...). This
        session's own credentials assume the role, through STS in the first of
        ``regions`` (the regional endpoint: no call leaves the shard's region), when the
        new session is first used and again before the credentials expire, so a run longer
        than the role's hour goes on. Same endpoint, timeouts, retries and deadline.
        A role that cannot be assumed raises :class:`AwsError` at the first call, saying
        which role in which account and what to check.
        """
        connect_timeout, read_timeout, max_attempts = self._timeouts
        assumed = AwsSession(
            regions=regions,
            endpoint_url=self._endpoint_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
            environ=self._environ,
            deadline=self._deadline,
            credentials=_AssumedRole(self, account, role_name, session_name, regions[0]),
        )
        # The role's account, by its ARN: no GetCallerIdentity per shard to learn it (so
        # its caller_arn stays None).
        assumed._account_id = account
        return assumed

    def caller_arn(self, region: str | None = None) -> str | None:
        """The ARN of who the credentials are (the same GetCallerIdentity as
        :meth:`account_id`); None when STS did not say. Raises ``AwsError`` as it does."""
        self.account_id(region)
        return self._caller_arn


class _AssumedRole(botocore.credentials.CredentialProvider):
    """Credentials of a role, assumed by another session's, refreshed before they expire."""

    METHOD = "smartvault-assume-role"
    #: an hour: the longest a role assumed by a role (role chaining) may be
    DURATION_SECONDS = 3600

    def __init__(
        self, by: AwsSession, account: str, role_name: str, session_name: str, region: str
    ) -> None:
        super().__init__()
        self._by = by
        self._account = account
        self._role_name = role_name
        self._session_name = session_name[:64]
        self._region = region

    def load(self) -> botocore.credentials.DeferredRefreshableCredentials:
        return botocore.credentials.DeferredRefreshableCredentials(
            refresh_using=self._fetch, method=self.METHOD
        )

    def _fetch(self) -> dict[str, str]:
        partition = arn_partition(self._by.caller_arn(self._region))
        arn = role_arn(partition, self._account, self._role_name)
        sts = self._by.client("sts", self._region)
        try:
            with translate_errors("sts", "AssumeRole", self._region):
                reply = sts.assume_role(
                    RoleArn=arn,
                    RoleSessionName=self._session_name,
                    DurationSeconds=self.DURATION_SECONDS,
                )
        except AwsError as exc:
            raise AwsError(
                f"cannot work in account {self._account}: assuming {arn} failed ({exc}); "
                "check that the account has the role (the spoke stack of `smartvault deploy "
                "template --fleet`), that its name is the one given (--role-name, "
                "SMARTVAULT_SHARD_ROLE) and that it trusts the caller"
            ) from exc
        creds = reply["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }


#: botocore's loader of service models, shared by every session of this process
_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def _with_shared_models(core: botocore.session.Session) -> botocore.session.Session:
    """``core``, reading its service models through the loader of the process's first
    session: each loader parses EC2's model (megabytes of JSON, ~0.3 s) once; a process
    that makes many sessions (``smartvault demo`` runs ten commands) would parse it for
    each. The models are the installed botocore's, the same for every session."""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _LOADER)
    return core


def _refuse_other_servers(client: Any, service: str, region: str) -> None:
    """Stop at a reply that is not AWS's, before botocore parses it.

    An HTML page (a wrong ``--endpoint-url``, a captive portal, a proxy's error page)
    otherwise fails deep in botocore's parser with a long traceback, or worse, parses
    as an empty answer: "no audit records" from a web server.
    """
    url = str(client.meta.endpoint_url)

    def before_parse(operation_model: Any, response_dict: Any, **_: Any) -> None:
        check_reply(
            url,
            service,
            operation_model.name,
            region,
            operation_model.service_model.resolved_protocol,
            response_dict,
        )

    client.meta.events.register("before-parse", before_parse)


def _keep_inside(client: Any, service: str, deadline: Deadline, *, retries: bool) -> None:
    """Refuse to send, or to retry, a request of ``client`` that could not end in time."""

    def before_send(request: Any, **kwargs: Any) -> None:
        left = deadline.time_left()
        needed = deadline.needed(service)
        if left < needed:
            operation = str(kwargs.get("event_name", "")).rsplit(".", 1)[-1]
            raise DeadlineReached(
                operation=f"{service}:{operation}", service=service, left=left, needed=needed
            )

    def needs_retry(response: Any, caught_exception: Any, operation: Any, **kwargs: Any) -> None:
        if isinstance(caught_exception, DeadlineReached):  # refused by before_send
            raise caught_exception
        # botocore sleeps (up to 20 s) before a retry and only then sends it: decide
        # here, before that sleep, whether a retry could still end in time.
        status = response[0].status_code if response else 0
        code = (response[1].get("Error", {}).get("Code", "") if response else "") or ""
        failed = caught_exception is not None or status >= 500 or status == 429
        if not (failed or code in THROTTLING_CODES):
            return
        left = deadline.time_left()
        needed = deadline.needed(service) + _MAX_RETRY_SLEEP
        if left < needed:
            raise DeadlineReached(
                operation=f"{service}:{operation.name} (retry)",
                service=service,
                left=left,
                needed=needed,
            )

    # First, before any handler that answers a request itself (botocore's Stubber, an
    # in-process simulator): what it answers counts as sent.
    client.meta.events.register_first("before-send", before_send)
    if retries:  # a client that sends once never retries: nothing to decide
        client.meta.events.register_first("needs-retry", needs_retry)
