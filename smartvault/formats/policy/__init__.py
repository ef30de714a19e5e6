"""Read policy files: YAML in, validated :class:`~smartvault.core.model.Policy` records out.

The YAML is composed, never constructed (:mod:`.yaml12`): scalars follow the YAML 1.2
core schema (``on``, ``yes`` and ``no`` are text), tag keys and values keep their text
exactly as written, duplicate keys and object-building tags are problems, and every
value remembers where it was written. The document is then checked against the
shipped JSON Schema (:mod:`.schema`, errors in operator English by :mod:`.messages`)
and by the rules beyond it (:mod:`.checks`), and becomes frozen records
(:mod:`.build`). Every problem is reported as ``file:line:column: message``.

- :func:`load_policies`: files and folders → a ``PolicySet``, or one
  :class:`~smartvault.errors.PolicyError` with every problem of every file (:mod:`.load`).
- :func:`parse_policy`: a document already composed by :func:`compose` → its policies
  and its problems, reading no file (:mod:`.parse`); :func:`parse_policies` does both
  steps for text in hand.
- :func:`policy_schema`: the JSON Schema, as ``smartvault schema`` prints it.
"""

from __future__ import annotations

from smartvault.formats.policy.load import load_policies
from smartvault.formats.policy.parse import parse_policies
from smartvault.formats.policy.parse import parse_policy
from smartvault.formats.policy.schema import policy_schema
from smartvault.formats.policy.yaml12 import Document
from smartvault.formats.policy.yaml12 import compose

__all__ = [
    "Document",
    "compose",
    "load_policies",
    "parse_policies",
    "parse_policy",
    "policy_schema",
]
