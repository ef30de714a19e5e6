"""The accounts of an AWS Organization below an OU (or its root), for ``--accounts ou:...``."""

from __future__ import annotations

from smartvault.aws.errors import translate_errors
from smartvault.aws.session import AwsSession
from smartvault.errors import AwsError


def accounts_below(session: AwsSession, parent: str) -> tuple[tuple[str, ...], str]:
    """The ACTIVE accounts in ``parent`` (``ou-...`` or ``r-...``) and every OU below it,
    sorted, without the organization's management account; and that account's id.

    A service-managed StackSet never deploys to the management account, so a fleet has no
    role to assume there. Raises :class:`AwsError` naming the call and what to grant.
    """
    region = session.regions()[0]
    org = session.client("organizations", region)
    with translate_errors("organizations", "DescribeOrganization", region):
        management = org.describe_organization()["Organization"]["MasterAccountId"]
    accounts: set[str] = set()
    todo, seen = [parent], {parent}
    while todo:
        here = todo.pop()
        with translate_errors("organizations", "ListAccountsForParent", region):
            for page in org.get_paginator("list_accounts_for_parent").paginate(ParentId=here):
                accounts.update(a["Id"] for a in page["Accounts"] if a.get("Status") == "ACTIVE")
        with translate_errors("organizations", "ListOrganizationalUnitsForParent", region):
            pages = org.get_paginator("list_organizational_units_for_parent").paginate(
                ParentId=here
            )
            for page in pages:
                for unit in page["OrganizationalUnits"]:
                    if unit["Id"] not in seen:
                        seen.add(unit["Id"])
                        todo.append(unit["Id"])
    accounts.discard(management)
    if not accounts:
        raise AwsError(
            f"{parent} holds no active member account (the management account is left out): "
            "check the id with `aws organizations list-children --parent-id ...`"
        )
    return tuple(sorted(accounts)), management
