"""Tests of the deployment: the template, its IAM roles and the Lambda package."""
