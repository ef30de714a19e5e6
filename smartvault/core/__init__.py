"""SmartVault's pure core: the model, schedules, retention, tags and the planner.

Modules here import only the standard library and each other (``tests/test_layout.py``
keeps it so): no AWS, no clock, no files, no interpreter-wide state. Everything they
need, including the evaluation time, comes in as an argument.
"""
