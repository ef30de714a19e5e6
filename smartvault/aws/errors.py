"""botocore's failures, translated and classified once for all of SmartVault.

Two kinds of callers need them:

- :func:`translate_errors` turns any botocore failure inside a block into one readable
  :class:`~smartvault.errors.AwsError` line: which call failed, where, and what to do.
- :func:`error_code`, :func:`http_status`, :func:`describe` and :func:`is_retryable`
  classify a ``ClientError`` for the typed clients of this package (``ec2``, ``audit``),
  which turn it into SmartVault's own errors before anything outside ``aws/`` sees it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import botocore.exceptions
import botocore.parsers

from smartvault.errors import AwsError

PERMISSIONS_DOC = "docs/permissions-and-errors.md"

_SERVICE_TITLES = {"ec2": "EC2", "sts": "STS", "dynamodb": "DynamoDB", "sns": "SNS"}

_ACCESS_DENIED_CODES = frozenset(
    {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "Forbidden"}
)
_BAD_CREDENTIALS_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
    }
)
#: EC2, STS, SNS and DynamoDB's ways of saying "slow down": safe to retry, nothing was done.
THROTTLING_CODES = frozenset(
    {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"}
)


class DeadlineReached(botocore.exceptions.BotoCoreError):
    """A request not sent, or not retried, because it could not end before the run's
    deadline (see :mod:`smartvault.deadline`). Nothing of it reached AWS."""

    fmt = (
        "{operation} not sent: {left:.1f} s left before the run's deadline, and a request "
        "to {service} needs {needed:.1f} s; the next run does what is left"
    )


class NotAnAwsReply(AwsError):
    """An endpoint answered, but not in the format of the AWS service that was called:
    ``--endpoint-url`` (or ``AWS_ENDPOINT_URL``) points at some other HTTP server.

    An :class:`AwsError`, not a botocore error, on purpose: nothing may retry it, and
    every caller (the typed clients' retry loops included) lets it through to the one
    place that shows errors, as one line.
    """


#: The protocols of the services SmartVault calls (EC2, STS, SNS; DynamoDB); a reply of
#: any other protocol is left to botocore.
_XML_PROTOCOLS = frozenset({"query", "ec2"})
_JSON_PROTOCOLS = frozenset({"json"})
#: The first element of an XML body, after an optional declaration and comments.
_XML_ROOT_RE = re.compile(
    rb"\A\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<([A-Za-z_][\w.:-]*)", re.S
)


def _looks_like_aws(protocol: str, status: int, body: bytes) -> bool:
    """Whether a reply has the shape every reply of a service of ``protocol`` has.

    A 5xx is let through whatever it holds: AWS's own front ends can answer one with
    an HTML page, and botocore retries it. An empty body is AWS's only for an error,
    except in the REST protocols, whose writes (S3's PutObject) answer with headers only.
    """
    if status >= 500:
        return True
    if not body.strip():
        return status >= 300 or protocol.startswith("rest-")
    if protocol in _XML_PROTOCOLS:
        root = _XML_ROOT_RE.match(body)
        # AWS's query replies are <OperationResponse>, <ErrorResponse> or EC2's <Response>.
        return root is not None and root.group(1).split(b":")[-1].endswith(b"Response")
    if protocol in _JSON_PROTOCOLS:
        try:
            return isinstance(json.loads(body), dict)
        except ValueError:
            return False
    return True


def check_reply(
    endpoint_url: str,
    service: str,
    operation: str,
    region: str,
    protocol: str,
    response: Mapping[str, Any],
) -> None:
    """Raise :class:`NotAnAwsReply` when ``response`` (botocore's ``response_dict``,
    before it is parsed) cannot have come from AWS."""
    status = int(response.get("status_code") or 0)
    body = response.get("body") or b""
    if not isinstance(body, bytes) or _looks_like_aws(protocol, status, body):
        return
    headers = response.get("headers") or {}
    kind = str(headers.get("content-type") or headers.get("Content-Type") or "no content type")
    title = _SERVICE_TITLES.get(service, service)
    raise NotAnAwsReply(
        f"{endpoint_url} did not answer like AWS {title} calling "
        f"{_where(service, operation, region)} (HTTP {status}, {kind.split(';')[0]}): "
        "another server answered; check --endpoint-url and AWS_ENDPOINT_URL, and any "
        "proxy (HTTPS_PROXY)"
    )


def _where(service: str, operation: str, region: str) -> str:
    """``ec2:DescribeSnapshots in us-east-1``: the IAM action name, ready for a policy."""
    action = f"{service}:{operation}" if operation else service
    return f"{action} in {region}" if region else action


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _unreachable(service: str, region: str, url: str, what: str) -> AwsError:
    title = _SERVICE_TITLES.get(service, service)
    place = f" for {region}" if region else ""
    target = f" ({url})" if url else ""
    return AwsError(
        f"could not reach the {title} endpoint{place}{target}: {what}; "
        "check --endpoint-url, AWS_ENDPOINT_URL and the network"
    )


def _from_client_error(
    exc: botocore.exceptions.ClientError, service: str, operation: str, region: str
) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = _one_line(str(error.get("Message", ""))) or "no message"
    where = _where(service, operation, region)
    if code in _ACCESS_DENIED_CODES:
        return AwsError(
            f"access denied calling {where}: the role needs that permission "
            f"(see {PERMISSIONS_DOC}); AWS said: {message}"
        )
    if code == "AuthFailure":
        # EC2 uses AuthFailure both for keys it cannot validate and for some refusals.
        return AwsError(
            f"AWS refused the credentials calling {where}: check the access keys are current "
            f"and the role may call it (see {PERMISSIONS_DOC}); AWS said: {message}"
        )
    if code in _BAD_CREDENTIALS_CODES:
        return AwsError(
            f"the AWS credentials are invalid or expired ({code}) calling {where}: refresh them "
            "(`aws sso login`, new session token) or pick others with --profile / AWS_PROFILE"
        )
    if code == "OptInRequired":
        return AwsError(
            f"region {region or '?'} is not enabled for this account ({where} failed): "
            "enable it under Account > AWS Regions, or drop it from --region and the policies"
        )
    if code in THROTTLING_CODES:
        return AwsError(
            f"AWS kept throttling {where} ({code}) through every retry: "
            "another tool may be using the same API quota; run again later"
        )
    return AwsError(f"{where} failed: {code}: {message}")


def _from_botocore_error(
    exc: botocore.exceptions.BotoCoreError, service: str, operation: str, region: str
) -> AwsError:
    where = _where(service, operation, region)
    kwargs: dict[str, Any] = getattr(exc, "kwargs", {})
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return AwsError(
            f"no AWS credentials found calling {where}: set AWS_PROFILE, run `aws configure`, "
            "or pass --profile"
        )
    if isinstance(exc, botocore.exceptions.PartialCredentialsError):
        return AwsError(
            f"incomplete AWS credentials in {kwargs.get('provider', '?')} "
            f"(missing {kwargs.get('cred_var', '?')}) calling {where}: set AWS_PROFILE, "
            "run `aws configure`, or pass --profile"
        )
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return AwsError(
            f"AWS profile `{kwargs.get('profile', '?')}` not found: check --profile and "
            "AWS_PROFILE against `aws configure list-profiles`"
        )
    if isinstance(exc, botocore.exceptions.SSOError | botocore.exceptions.TokenRetrievalError):
        return AwsError(
            f"the AWS SSO session could not be used calling {where}: run `aws sso login` "
            "for this profile and try again"
        )
    if isinstance(exc, botocore.exceptions.CredentialRetrievalError):
        return AwsError(
            f"could not get AWS credentials from {kwargs.get('provider', '?')} calling {where}: "
            f"{_one_line(str(kwargs.get('error_msg', exc)))}"
        )
    if isinstance(exc, DeadlineReached):
        return AwsError(str(exc))
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return AwsError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    if isinstance(exc, botocore.exceptions.SSLError):
        return _unreachable(
            service, region, str(kwargs.get("endpoint_url", "")), "TLS validation failed"
        )
    if isinstance(
        exc, botocore.exceptions.ConnectTimeoutError | botocore.exceptions.ReadTimeoutError
    ):
        return _unreachable(service, region, str(kwargs.get("endpoint_url", "")), "timed out")
    if isinstance(exc, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError):
        return _unreachable(
            service, region, str(kwargs.get("endpoint_url", "")), "connection failed"
        )
    return AwsError(f"{where} failed: {_one_line(str(exc))}")


@contextmanager
def translate_errors(service: str, operation: str, region: str = "") -> Iterator[None]:
    """Turn any botocore failure inside the block into one readable :class:`AwsError` line.

    ``operation`` is the API name (``DescribeSnapshots``) so the message names the IAM
    action to grant. Usable as ``with translate_errors(...):`` or as a decorator. The
    botocore exception stays attached as ``__cause__`` for ``--verbose`` tracebacks.
    """
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise _from_client_error(exc, service, operation, region) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise _from_botocore_error(exc, service, operation, region) from exc
    except botocore.parsers.ResponseParserError as exc:  # not a BotoCoreError
        raise AwsError(
            f"{_where(service, operation, region)} failed: the reply could not be read "
            f"({_one_line(str(exc))[:200]}): check --endpoint-url and AWS_ENDPOINT_URL"
        ) from exc


def error_code(exc: botocore.exceptions.ClientError) -> str:
    """AWS's error code (``RequestLimitExceeded``), or ``Unknown``."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def http_status(exc: botocore.exceptions.ClientError) -> int:
    """The HTTP status of the failed response, or 0 when there was none."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def aws_message(exc: botocore.exceptions.ClientError | botocore.exceptions.BotoCoreError) -> str:
    """What AWS (or botocore) said, never empty."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Message") or "no message")
    return str(exc)


def describe(exc: botocore.exceptions.ClientError) -> str:
    """``Code: message``, plus the HTTP status of a server-side failure."""
    status = http_status(exc)
    suffix = f" (HTTP {status})" if status >= 500 else ""
    return f"{error_code(exc)}: {aws_message(exc)}{suffix}"


def is_throttling(exc: botocore.exceptions.ClientError) -> bool:
    """AWS refused the request to slow us down: nothing was done, it may be sent again."""
    return error_code(exc) in THROTTLING_CODES


def is_server_error(exc: botocore.exceptions.ClientError) -> bool:
    """An HTTP 5xx: AWS may or may not have done what was asked."""
    return http_status(exc) >= 500
