"""Tests of smartvault.formats: policy files, plan JSON and the plan for people."""
