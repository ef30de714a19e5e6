"""Tests of the pure core, smartvault.core."""
