"""Tests of smartvault.aws: the one place that talks to boto3."""
