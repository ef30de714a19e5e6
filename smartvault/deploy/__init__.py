"""The Lambda deployment: a CloudFormation template and the zip it runs.

``cloudformation_template`` is pure: policies in, template text and warnings out, no
AWS call, and no boto3 loaded (a test keeps it so). ``build_package`` writes the zip
the function runs, byte-for-byte reproducible.
"""

from __future__ import annotations

from smartvault.deploy.template import PackageInfo
from smartvault.deploy.template import build_package
from smartvault.deploy.template import cloudformation_template
from smartvault.deploy.template import function_policy_statements
from smartvault.deploy.template import runtime_requirements
from smartvault.deploy.template import schedule_logical_ids

__all__ = [
    "PackageInfo",
    "build_package",
    "cloudformation_template",
    "function_policy_statements",
    "runtime_requirements",
    "schedule_logical_ids",
]
