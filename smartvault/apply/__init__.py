"""Applying a plan: one step per action type, one loop, one claim guard, one audit trail."""
