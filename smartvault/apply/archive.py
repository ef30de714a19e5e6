"""The archive step: ModifySnapshotTier to the archive tier, for retained old points.

The call names an absolute end state, so it is safe to repeat: a repeat of a call that
had landed is accepted again or answered ``IncorrectState`` (already archived or being
archived), which counts as done. Nothing is made twice, and the archive's billing starts
once. A snapshot a person temporarily restored from the archive is left as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from smartvault.apply.step import Looked
from smartvault.apply.step import LookFirstStep
from smartvault.apply.step import ours_or_refusal
from smartvault.core.model import ArchiveAction
from smartvault.core.model import AuditRecordRef
from smartvault.core.report import ActionResult
from smartvault.errors import AuditError
from smartvault.errors import Ec2CallFailed

#: EC2's answer to a second ModifySnapshotTier on a snapshot archived or being archived.
_TIER_STATE_CODES: Final = frozenset({"IncorrectState"})


class ArchiveStep(LookFirstStep[ArchiveAction]):
    """Moves retained recovery points past ``archive.after`` to the archive tier."""

    def run(
        self, index: int, action: ArchiveAction, prepared: Mapping[str, Looked]
    ) -> ActionResult:
        ctx = self._ctx
        looked = ours_or_refusal(
            ctx.trail, action, prepared[action.region], "archive", "archived", unless_held=True
        )
        if isinstance(looked, ActionResult):
            return looked
        ids = action.snapshot_ids
        gone = [sid for sid in ids if sid not in looked]
        already = [sid for sid in ids if sid in looked and looked[sid].storage_tier == "archive"]
        # Temporarily restored from the archive by a person, for use: EC2 archives it again
        # by itself when the restore period ends; archiving it now would take it away.
        restored = [
            sid
            for sid in ids
            if sid in looked and sid not in already and looked[sid].restore_expiry is not None
        ]
        todo = [sid for sid in ids if sid in looked and sid not in already + restored]
        archived: list[str] = []
        errors: list[str] = []
        ref: AuditRecordRef | None = None
        if todo:
            try:
                ref = ctx.trail.pending(
                    ctx.trail.record_of(action, "pending", snapshot_ids=tuple(ids))
                )
            except AuditError as exc:
                return ActionResult(action, "failed", error=f"nothing archived: {exc}")
            for sid in todo:
                try:
                    ctx.ec2.archive(action.region, sid)
                    archived.append(sid)
                except Ec2CallFailed as exc:
                    if exc.code == "InvalidSnapshot.NotFound":
                        gone.append(sid)
                    elif exc.code in _TIER_STATE_CODES and self._archived_or_archiving(
                        action.region, sid, exc.detail
                    ):
                        already.append(sid)
                    else:
                        errors.append(exc.message)
        details = {
            "archived": ",".join(archived),
            "already_archived": ",".join(already),
            "already_gone": ",".join(gone),
        }
        if restored:
            details["temporarily_restored"] = ",".join(restored)
        result = self._result(action, errors, restored)
        if ref is None:
            return ctx.trail.final(action, result, details)
        return ctx.trail.update(ref, result, details=details)

    @staticmethod
    def _result(action: ArchiveAction, errors: list[str], restored: list[str]) -> ActionResult:
        ids = tuple(action.snapshot_ids)
        if errors:
            return ActionResult(
                action, "failed", ids, error="; ".join(errors) + "; the next run tries again"
            )
        if restored:
            return ActionResult(
                action,
                "skipped",
                ids,
                reason=f"{', '.join(restored)} temporarily restored from the archive tier: left "
                "as they are (EC2 archives them again when the restore period ends)",
            )
        return ActionResult(action, "succeeded", ids)

    def _archived_or_archiving(self, region: str, sid: str, message: str) -> bool:
        """After IncorrectState: is the snapshot archived, or on its way there?"""
        if "archiv" in message.lower():
            return True
        try:
            found = self._ctx.ec2.by_id(region, [sid])
        except Ec2CallFailed:
            return False
        return sid in found and found[sid].storage_tier == "archive"
