"""`smartvault plan --compare REF` on a git repository made in the test, against moto.

The three pull requests a reviewer meets (a shortened retention, a renamed policy, a
narrowed selector), a new policy file, and the answers to what cannot be compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from smartvault.formats.plan_json import plan_schema
from tests.cli import POLICY
from tests.cli import one_error_line
from tests.cli import run
from tests.git_helpers import make_repo
from tests.git_helpers import write
from tests.moto_helpers import age_recovery_point
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots

KEEPS_A_MONTH = POLICY.replace("keep_last: 2", "keep_last: 7").replace(
    "max_age: 7d", "max_age: 30d"
)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return make_repo(tmp_path / "repo", {"policies/nightly.yaml": KEEPS_A_MONTH})


def compared(runner, repo: Path, *args: str) -> dict:
    result = run(
        runner, "plan", "--compare", "main", "--format", "json", *args, str(repo / "policies")
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, plan_schema())
    return document


def markdown(runner, repo: Path) -> str:
    result = run(
        runner, "plan", "--compare", "main", "--format", "markdown", str(repo / "policies")
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def four_days_of_backups(runner, ec2, repo: Path) -> None:
    """Four nightly recovery points of one instance, 4, 3, 2 and 1 days old."""
    assert run(runner, "audit", "init").exit_code == 0
    for _ in range(4):
        assert run(runner, "apply", "--yes", str(repo / "policies")).exit_code == 0
        for snapshot in managed_snapshots(ec2):
            age_recovery_point(ec2, snapshot, 1)


def test_a_shortened_retention_deletes_what_main_keeps_and_says_safety_holds_it(runner, ec2, repo):
    launch(ec2, 1, tags={"backup": "true", "Name": "db-1"})
    four_days_of_backups(runner, ec2, repo)
    write(
        repo,
        {
            "policies/nightly.yaml": POLICY.replace("keep_last: 2", "keep_last: 1").replace(
                "max_age: 7d", "max_age: 1d"
            )
        },
    )

    document = compared(runner, repo)
    page = markdown(runner, repo)

    compare = document["compare"]
    assert compare["ref"] == "main"
    deleted = [a for a in compare["added"] if a["type"] == "delete"]
    assert len(deleted) == 3
    assert all(a["held_by"]["rule"] == "max_delete_fraction" for a in deleted)
    assert compare["removed"] == []
    assert compare["impact"]["deletes_kept_by_ref"] == 3
    assert compare["impact"]["held"] == 3
    # held: the plan itself deletes nothing until a person lifts safety
    assert document["summary"]["delete"] == 0
    assert page.startswith("## SmartVault: this change against main\n\n")
    assert (
        "**This change deletes 3 recovery points that main keeps (all 3 held by safety: "
        "a person must run \\`smartvault apply --allow-deletes nightly\\` to make them).**"
    ) in page
    assert page.index("This change deletes") < page.index("## SmartVault plan")
    assert "policy \\`nightly\\` changes retention" in page


def test_a_renamed_policy_leaves_its_recovery_points_as_orphans_and_deletes_nothing(
    runner, ec2, repo
):
    launch(ec2, 1)
    assert run(runner, "audit", "init").exit_code == 0
    assert run(runner, "apply", "--yes", str(repo / "policies")).exit_code == 0
    write(
        repo, {"policies/nightly.yaml": KEEPS_A_MONTH.replace("name: nightly", "name: nightly-v2")}
    )

    document = compared(runner, repo)
    page = markdown(runner, repo)

    impact = document["compare"]["impact"]
    assert [o["policy"] for o in impact["new_orphans"]] == ["nightly"]
    assert impact["policies_renamed"] == [{"from": "nightly", "to": "nightly-v2"}]
    assert impact["deletes_kept_by_ref"] == 0
    assert impact["stops_backing_up"] == []
    assert not [a for a in document["compare"]["added"] if a["type"] == "delete"]
    assert [a["policy"] for a in document["compare"]["added"]] == ["nightly-v2"]
    assert "**This change leaves 1 recovery point as an orphan (kept, never deleted).**" in page
    assert (
        "1 recovery point of policy \\`nightly\\` becomes an orphan: kept, never deleted, until "
        "a person deletes it; \\`nightly\\` looks renamed to \\`nightly-v2\\`"
    ) in page


def test_a_narrowed_selector_names_the_instances_it_stops_backing_up(runner, ec2, repo):
    launch(ec2, 2, tags={"backup": "true", "tier": "gold"})
    (dropped,) = launch(ec2, 1, tags={"backup": "true", "Name": "web-3"})
    narrowed = KEEPS_A_MONTH.replace('tags: {backup: "true"}', 'tags: {backup: "true", tier: gold}')
    write(repo, {"policies/nightly.yaml": narrowed})

    document = compared(runner, repo)
    text = run(runner, "plan", "--compare", "main", str(repo / "policies")).stdout

    impact = document["compare"]["impact"]
    assert impact["stops_backing_up"] == [
        {
            "region": "us-east-1",
            "resource_id": dropped,
            "resource_name": "web-3",
            "policies": ["nightly"],
        }
    ]
    (removed,) = document["compare"]["removed"]
    assert (removed["type"], removed["resource_id"]) == ("create", dropped)
    assert document["compare"]["added"] == []
    # the plan itself is the new policies' plan: two creates
    assert document["summary"]["create"] == 2
    assert "Compared with main" in text
    assert "this change stops backing up 1 instance" in text
    assert f"instance {dropped} (web-3) in us-east-1 is no longer backed up" in text


def test_a_new_policy_file_missing_at_the_revision_adds_everything_it_does(runner, ec2, repo):
    launch(ec2, 2, tags={"tier": "gold"})
    new = repo / "policies" / "gold.yaml"
    write(
        repo,
        {
            "policies/gold.yaml": POLICY.replace("name: nightly", "name: gold").replace(
                'backup: "true"', "tier: gold"
            )
        },
    )

    result = run(runner, "plan", "--compare", "main", "--format", "json", str(new))

    assert result.exit_code == 0, result.output
    compare = json.loads(result.stdout)["compare"]
    assert [a["type"] for a in compare["added"]] == ["create", "create"]
    assert compare["removed"] == []
    assert compare["impact"]["missing_at_ref"] == [str(new)]
    assert compare["impact"]["policies_added"] == ["gold"]
    assert compare["impact"]["starts_backing_up"][0]["policies"] == ["gold"]


def test_out_saves_only_the_new_plan_and_detailed_exitcode_follows_it(runner, ec2, repo, tmp_path):
    launch(ec2, 1)
    out = tmp_path / "plan.json"

    result = run(
        runner,
        "plan",
        "--compare",
        "main",
        "--out",
        str(out),
        "--detailed-exitcode",
        "--format",
        "json",
        str(repo / "policies"),
    )

    assert result.exit_code == 2
    saved = json.loads(out.read_text())
    assert "compare" not in saved
    assert saved == {k: v for k, v in json.loads(result.stdout).items() if k != "compare"}
    assert json.loads(result.stdout)["compare"]["impact"]["lead"] == (
        "this change does nothing that applying the policies at main would not do"
    )


def test_an_unknown_ref_is_one_line_that_names_it(runner, ec2, repo):
    result = run(runner, "plan", "--compare", "nope", str(repo / "policies"))

    assert result.exit_code == 1
    assert one_error_line(result).startswith("Error: unknown git revision 'nope' in ")


def test_policies_outside_git_are_one_line(runner, ec2, tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    path = tmp_path / "nightly.yaml"
    path.write_text(POLICY)

    result = run(runner, "plan", "--compare", "main", str(path))

    assert result.exit_code == 1
    assert "is not in a git work tree" in one_error_line(result)


def test_invalid_policies_at_the_revision_say_which_revision_and_where(
    runner, ec2, tmp_path, monkeypatch
):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = make_repo(
        tmp_path / "repo", {"policies/nightly.yaml": POLICY.replace("keep_last: 2", "keep_last: 0")}
    )
    write(repo, {"policies/nightly.yaml": POLICY})

    result = run(runner, "plan", "--compare", "main", str(repo / "policies"))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "Error: the policies at main are not valid" in result.stderr
    assert "main:policies/nightly.yaml:9:18:" in result.stderr
