"""SNS notifications: delivery through moto (:mod:`smartvault.aws.sns`)."""

from __future__ import annotations

import json

import pytest

from smartvault.aws.sns import publish
from smartvault.core.report import compose
from smartvault.errors import AwsError
from tests.core.test_report import FAILED
from tests.core.test_report import make_summary
from tests.moto_helpers import sns_inbox

TOPIC_ACCOUNT = "123456789012"


@pytest.fixture
def sns_to_sqs(aws):
    """A topic with an SQS queue subscribed (raw delivery), to read what was published."""
    return sns_inbox()


class TestPublish:
    def test_published_notification_reaches_a_subscriber_with_subject_and_body(self, sns_to_sqs):
        sns, sqs, topic_arn, queue_url = sns_to_sqs
        subject, body = compose(make_summary(failed=FAILED))
        publish(sns, topic_arn, subject, body)
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        assert len(messages) == 1
        envelope = json.loads(messages[0]["Body"])
        assert envelope["TopicArn"] == topic_arn
        assert envelope["Subject"] == subject
        assert envelope["Message"] == body
        assert "SnapshotLimitExceeded" in envelope["Message"]

    def test_publishing_to_a_missing_topic_raises_aws_error_naming_it(self, sns_to_sqs):
        sns, _, _, _ = sns_to_sqs
        missing = f"arn:aws:sns:us-east-1:{TOPIC_ACCOUNT}:no-such-topic"
        with pytest.raises(AwsError, match=r"notification to .*no-such-topic not sent"):
            publish(sns, missing, "subject", "body")
