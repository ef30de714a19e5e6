"""Tests of applying a plan: the steps, the loop, claims and the audit trail."""
