"""The Lambda deployment: a CloudFormation template and the zip it runs.

The template (:mod:`.template`, its roles in :mod:`.iam`) is pure: policies in,
template text and warnings out, no AWS call, and no boto3 loaded (a test keeps it so).
The fleet's hub and spoke templates (:mod:`.fleet`) are pure in the same way.
The package (:mod:`.package`) is the zip the function runs, byte-for-byte reproducible.
"""

from __future__ import annotations

from smartvault.deploy.alarms import DEFAULT_CATCH_UP
from smartvault.deploy.alarms import schedule_period
from smartvault.deploy.fleet import hub_template
from smartvault.deploy.fleet import hub_template_text
from smartvault.deploy.fleet import spoke_template
from smartvault.deploy.fleet import state_machine_definition
from smartvault.deploy.iam import function_policy_statements
from smartvault.deploy.package import PackageInfo
from smartvault.deploy.package import build_package
from smartvault.deploy.package import runtime_requirements
from smartvault.deploy.template import check_catch_up
from smartvault.deploy.template import cloudformation_template
from smartvault.deploy.template import schedule_logical_ids

__all__ = [
    "DEFAULT_CATCH_UP",
    "PackageInfo",
    "build_package",
    "check_catch_up",
    "cloudformation_template",
    "function_policy_statements",
    "hub_template",
    "hub_template_text",
    "runtime_requirements",
    "schedule_logical_ids",
    "schedule_period",
    "spoke_template",
    "state_machine_definition",
]
