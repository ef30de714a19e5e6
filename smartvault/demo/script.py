"""The demo's steps: each one a real ``smartvault`` command, with a heading saying why.

The commands are run in this process through the same root group a person types
(``root.main([...])``), on the policies copied into the demo's folder, so what is shown
is exactly what ``smartvault plan`` or ``smartvault apply`` prints against a real
account. The script only adds headings, makes the fleet, and at the end counts what
happened from the plan it saved and the audit log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from smartvault.demo.fleet import REGIONS
from smartvault.demo.fleet import RENAMED_POLICY
from smartvault.demo.fleet import age_restore_tests
from smartvault.demo.fleet import seed
from smartvault.demo.sandbox import simulated_account
from smartvault.errors import ConfigError

Echo = Callable[[str], None]

#: the root options every step runs with: both fleet regions, the table in the first
_GLOBAL = ("--region", ",".join(REGIONS), "--audit-table", "smartvault-demo-audit")


@dataclass(frozen=True)
class Outcome:
    """What the demo's run did, counted; the command's exit code follows from it."""

    created: int
    deleted: int
    skipped: int
    orphaned: int
    held_in_compare: int | None
    restore_tests_passed: int
    restore_tests_failed: int
    failed_steps: tuple[str, ...]
    seconds: float
    #: where the report page was kept (``--report``); None: it went with the folder
    report: Path | None = None


def run_demo(
    root: click.Command, paths: Sequence[Path], echo: Echo, report: Path | None = None
) -> Outcome:
    """Seed the simulated account, then run the cycle on copies of ``paths``; with
    ``report`` (an absolute path), keep the report page the run wrote there."""
    started = time.monotonic()
    with simulated_account() as folder:
        outcome = _Script(root, folder, echo).run(paths, started)
        page = folder / "report.html"
        if report is None or not page.exists():
            return outcome
        try:
            shutil.copyfile(page, report)
        except OSError as exc:
            raise ConfigError(f"cannot write the report to {report}: {exc.strerror}") from exc
        return replace(outcome, report=report)


class _Script:
    def __init__(self, root: click.Command, folder: Path, echo: Echo) -> None:
        self._root = root
        self._folder = folder
        self._echo = echo
        self._failed: list[str] = []
        self._ec2: dict[str, Any] = {}

    def run(self, paths: Sequence[Path], started: float) -> Outcome:
        repo = self._folder / "repo"
        policies = repo / "policies"
        _copy_policies(paths, policies)
        self._intro(paths)
        self._seed()
        plan_file = self._folder / "plan.json"

        if not self._step(
            "validate",
            "Check the policy files: every problem as file:line:column, before anything runs.",
            "validate",
            str(policies),
        ):
            self._echo("The demo stops here: fix the policies above and run it again.")
            return self._outcome(plan_file, None, started)
        self._step(
            "audit init",
            "Create the DynamoDB audit table (once per account): apply records every "
            "action there, and refuses to run without it.",
            "audit",
            "init",
        )
        self._step(
            "coverage",
            "What protects each instance, and what does not: the untagged ones, the one "
            "tagged backup-skip, the one whose tags do not quite match a policy.",
            "coverage",
            str(policies),
            ok_codes=(0, 2),
        )
        self._step(
            "plan",
            "What the policies would do, each action with its reason: new recovery points, "
            "expired ones deleted, one kept because an AMI still uses it, orphans of a "
            "renamed policy left alone. Nothing is changed; the plan is saved to be applied.",
            "plan",
            "--out",
            str(plan_file),
            str(policies),
        )
        self._step(
            "apply",
            "Apply exactly the plan just reviewed (apply --plan refuses if the account "
            "changed since).",
            "apply",
            "--yes",
            "--plan",
            str(plan_file),
            str(policies),
        )
        self._step(
            "plan again",
            "The same policies a moment later: everything is done, nothing is due.",
            "plan",
            str(policies),
        )
        aged = sum(age_restore_tests(self._ec2[r], days=7) for r in REGIONS)
        self._step(
            "verify",
            "A restore test: turn the newest recovery point of each instance into volumes, "
            "wait until they are available, mark its snapshots smartvault:verified, delete "
            "the test volumes. The fleet's last tests were two days ago and nightly tests "
            f"every 7 days, so the demo has moved them a week back ({aged} snapshots) to "
            "make them due now.",
            "verify",
            "--yes",
            str(policies),
        )
        held = self._compare(repo, policies)
        self._step(
            "audit list",
            "The audit log: every action above, who did it and what came of it.",
            "audit",
            "list",
        )
        self._step(
            "audit report",
            "The same log as one page to open in any browser, offline: failures first, "
            "a chart of the backups made and deleted each day, each policy's totals and RPO, "
            "every record searchable and sortable (`smartvault demo --report FILE.html` "
            "keeps it).",
            "audit",
            "report",
            "--out",
            str(self._folder / "report.html"),
            str(policies),
        )
        return self._outcome(plan_file, held, started)

    # --- the steps -----------------------------------------------------------

    def _intro(self, paths: Sequence[Path]) -> None:
        self._echo(
            "SmartVault demo: a simulated AWS account (moto, in this process): no "
            f"credentials, no network; everything is written under {self._folder} ($DEMO)"
        )
        self._echo(
            "and removed at the end. Policies: "
            + ", ".join(str(p) for p in paths)
            + " (copied to $DEMO/repo/policies; the originals are never changed)."
        )
        self._echo("Every command below runs with: " + " ".join(_GLOBAL))

    def _seed(self) -> None:
        from smartvault.aws.session import AwsSession

        session = AwsSession(regions=REGIONS)
        self._ec2 = {r: session.client("ec2", r) for r in REGIONS}
        fleet = seed(self._ec2, datetime.now(UTC))
        self._echo("")
        self._echo(
            f"The fleet: {len(fleet.instances)} instances in {', '.join(REGIONS)}, "
            "with backdated history: nightly backups of up to 20 nights, tiered gold, "
            f"silver and bronze points of up to 20 days, points of a policy renamed away "
            f"({RENAMED_POLICY!r}), an AMI made from an old snapshot ({fleet.ami_snapshot}), "
            f"and a snapshot made by hand ({fleet.manual_snapshot})."
        )

    def _compare(self, repo: Path, policies: Path) -> int | None:
        """Commit the policies, shorten a retention in the work tree, plan --compare HEAD."""
        heading = (
            "A policy edit under review: retention shortened in the work tree. plan "
            "--compare HEAD shows what the edit itself would delete, and the deletion "
            "circuit breaker holding it back until a person lifts it."
        )
        if shutil.which("git") is None:
            self._heading("plan --compare", heading)
            self._echo("(skipped: git is not installed; plan --compare reads policies from git)")
            return None
        try:
            _git(repo, "init", "-q")
            _git(repo, "add", "-A")
            _git(repo, "commit", "-q", "-m", "policies as reviewed")
        except (OSError, subprocess.CalledProcessError) as exc:
            self._heading("plan --compare", heading)
            self._echo(f"(skipped: git could not make the demo's repository: {exc})")
            return None
        edited = _shorten_retention(policies)
        if edited is None:
            self._heading("plan --compare", heading)
            self._echo("(skipped: no policy with a max_age or keep_last to shorten)")
            return None
        heading += f" The edit: {edited}."
        saved = self._folder / "compared.json"
        self._step(
            "plan --compare",
            heading,
            "plan",
            "--compare",
            "HEAD",
            "--out",
            str(saved),
            str(policies),
        )
        document = json.loads(saved.read_text()) if saved.exists() else {}
        return len(document.get("held_deletes", ()))

    # --- running commands ----------------------------------------------------

    def _heading(self, name: str, why: str) -> None:
        self._echo("")
        self._echo(f"━━ smartvault {name} " + "━" * max(3, 76 - len(name)))
        self._echo(why)
        self._echo("")

    def _step(self, name: str, why: str, *args: str, ok_codes: tuple[int, ...] = (0,)) -> bool:
        self._heading(name, why)
        self._echo("$ smartvault " + " ".join(_shown(a, self._folder) for a in args))
        code = self._invoke(list(args))
        if code not in ok_codes:
            self._failed.append(name)
            self._echo(f"(smartvault {name} exited {code})")
            return False
        return True

    def _invoke(self, args: list[str]) -> int:
        try:
            self._root.main([*_GLOBAL, *args], prog_name="smartvault", standalone_mode=False)
        except click.exceptions.Exit as exc:
            return exc.exit_code
        except click.ClickException as exc:
            exc.show()
            return exc.exit_code
        except click.Abort:
            return 1
        return 0

    def _quiet(self, *args: str) -> Any:
        """The JSON one command prints, not shown: what the demo counts by."""
        result = CliRunner().invoke(self._root, [*_GLOBAL, *args, "--format", "json"])
        return json.loads(result.stdout) if result.stdout.strip() else None

    def _outcome(self, plan_file: Path, held: int | None, started: float) -> Outcome:
        plan: dict[str, Any] = json.loads(plan_file.read_text()) if plan_file.exists() else {}
        records: list[dict[str, Any]] = self._quiet("audit", "list") or []

        def count(action: str, outcome: str) -> int:
            return sum(1 for r in records if r["action"] == action and r["outcome"] == outcome)

        return Outcome(
            created=count("create", "succeeded"),
            deleted=count("delete", "succeeded"),
            skipped=len(plan.get("skipped", [])),
            orphaned=len(plan.get("orphans", [])),
            held_in_compare=held,
            restore_tests_passed=count("verify", "succeeded"),
            restore_tests_failed=count("verify", "failed"),
            failed_steps=tuple(self._failed),
            seconds=time.monotonic() - started,
        )


def _git(repo: Path, *args: str) -> None:
    env_identity = {
        "GIT_AUTHOR_NAME": "SmartVault demo",
        "GIT_AUTHOR_EMAIL": "demo@example.invalid",
        "GIT_COMMITTER_NAME": "SmartVault demo",
        "GIT_COMMITTER_EMAIL": "demo@example.invalid",
    }
    subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **env_identity},
        check=True,
        capture_output=True,
    )


_MAX_AGE = re.compile(r"^(\s+max_age:\s*)(\S+)", re.MULTILINE)
_KEEP_LAST = re.compile(r"^(\s+keep_last:\s*)(\d+)", re.MULTILINE)


def _shorten_retention(policies: Path) -> str | None:
    """Shorten the first policy file's first ``max_age`` to 1d and ``keep_last`` to 1;
    what was changed, or None when no file has either."""
    for path in sorted(p for p in policies.rglob("*") if p.suffix in (".yaml", ".yml")):
        text = path.read_text()
        age, last = _MAX_AGE.search(text), _KEEP_LAST.search(text)
        if age is None and last is None:
            continue
        changes = []
        if age is not None:
            text = text[: age.start(2)] + "1d" + text[age.end(2) :]
            changes.append(f"max_age {age.group(2)} → 1d")
        last = _KEEP_LAST.search(text)
        if last is not None:
            text = text[: last.start(2)] + "1" + text[last.end(2) :]
            changes.append(f"keep_last {last.group(2)} → 1")
        path.write_text(text)
        return f"{path.name}: " + ", ".join(changes)
    return None


def _copy_policies(paths: Sequence[Path], into: Path) -> None:
    """Copy each policy file or folder of ``paths`` into ``into``, under its own name."""
    into.mkdir(parents=True)
    for path in paths:
        if path.is_dir():
            shutil.copytree(path, into / path.name if len(paths) > 1 else into, dirs_exist_ok=True)
        else:
            shutil.copy2(path, into / path.name)


def _shown(arg: str, folder: Path) -> str:
    return arg.replace(str(folder), "$DEMO")
