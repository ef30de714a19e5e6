"""What the CLI prints while it works."""

from __future__ import annotations


def test_progress_on_a_terminal_counts_against_the_total(capsys):
    from smartvault.cli.output import Progress
    from smartvault.core.report import ActionResult
    from tests.factories import CREATE

    progress = Progress(tty=True, total=3)
    progress(ActionResult(CREATE, "succeeded"))
    progress(ActionResult(CREATE, "failed", error="boom"))
    progress.close()

    out = capsys.readouterr().out
    assert out.endswith("\r2/3 done: created 1, deleted 0, skipped 0, failed 1\n")
