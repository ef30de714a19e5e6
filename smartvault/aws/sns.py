"""SNS: the one call that sends a notification."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smartvault.aws.errors import translate_errors
from smartvault.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


def publish(sns_client: SNSClient, topic_arn: str, subject: str, body: str) -> None:
    """Send one message to ``topic_arn``; raise ``AwsError`` saying why it was not sent."""
    region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else ""
    try:
        with translate_errors("sns", "Publish", region):
            sns_client.publish(TopicArn=topic_arn, Subject=subject, Message=body)
    except AwsError as exc:
        raise AwsError(
            f"notification to {topic_arn} not sent: {exc}; check the topic exists and the "
            "role may sns:Publish to it"
        ) from exc
