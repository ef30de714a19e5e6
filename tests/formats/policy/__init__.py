"""Tests of smartvault.formats.policy: one file of tests per module of the policy reader."""
