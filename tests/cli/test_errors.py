"""What an operator gets wrong, and the one readable message (and exit code) each gets."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from smartvault.cli import cli
from smartvault.errors import AwsError
from tests.cli import POLICY
from tests.cli import one_error_line
from tests.cli import run


def test_invalid_policies_fail_plan_with_located_errors_and_no_traceback(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("keep_last: 2", "keep_last: 0"))

    result = run(runner, "plan", str(bad))

    assert result.exit_code == 1
    assert f"{bad}:9:18: keep_last: 0 is less than the minimum of 1" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["plan", "apply", "deploy template"])
def test_a_missing_policy_path_is_one_line_naming_it(runner, ec2, command, tmp_path):
    result = run(runner, *command.split(), str(tmp_path / "nowhere"))

    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"no such file or directory: {tmp_path / 'nowhere'}" in line


def test_without_paths_and_without_a_policies_folder_the_error_says_so(
    runner, ec2, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)

    result = run(runner, "plan")

    assert result.exit_code == 1
    assert "run from the folder that holds policies/" in one_error_line(result)


def test_an_empty_policy_folder_is_reported_with_a_count(runner, ec2, tmp_path):
    result = run(runner, "plan", str(tmp_path))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path}: no policy files (*.yaml, *.yml) in this directory",
        "1 problem in the policies: fix it (see `smartvault validate`); nothing was done",
    ]


def test_a_policy_path_that_is_a_symlink_loop_is_called_a_loop_not_missing(runner, ec2, tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)

    result = run(runner, "plan", str(loop))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{loop}: a symbolic link loop (the link leads back to itself); "
        "point the link at a real file, or remove it",
        "1 problem in the policies: fix it (see `smartvault validate`); nothing was done",
    ]


def test_detailed_exitcode_turns_a_usage_error_into_1_not_2(runner, ec2, policy_file):
    detailed = run(runner, "plan", "--detailed-exitcode", "--at", "yesterday", policy_file)
    plain = run(runner, "plan", "--at", "yesterday", policy_file)

    assert detailed.exit_code == 1
    assert plain.exit_code == 2
    assert "not an ISO 8601 time" in detailed.output


# --- an endpoint that is not AWS ---------------------------------------------------


@contextmanager
def web_server(status: int) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every request with an HTML page."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>"
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [200, 404])
@pytest.mark.parametrize("command", ["plan", "apply --yes", "audit list"])
def test_an_endpoint_that_is_not_aws_is_one_line_naming_it(
    runner, policy_file, monkeypatch, command, status
):
    """Before, a web server's page was an 88-line parser traceback (plan, apply), or
    "no audit records in that period" (audit list): an HTML page parsed as an empty answer."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    paths = [] if command == "audit list" else [policy_file]
    with web_server(status) as url:
        result = run(runner, "--endpoint-url", url, *command.split(), *paths)

    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith(f"Error: {url} did not answer like AWS")
    assert f"(HTTP {status}, text/html)" in line
    assert "check --endpoint-url and AWS_ENDPOINT_URL" in line


def test_the_lambda_logs_an_endpoint_that_is_not_aws_as_one_json_line(
    tmp_path, monkeypatch, capsys
):
    """The Lambda's door: one ERROR log line that says what is wrong, then it raises."""
    import lambda_entry

    (tmp_path / "nightly.yaml").write_text(POLICY)
    monkeypatch.setenv("SMARTVAULT_POLICY_PATH", str(tmp_path))
    monkeypatch.setenv("SMARTVAULT_REGIONS", "us-east-1")
    with web_server(404) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        with pytest.raises(AwsError, match="did not answer like AWS"):
            lambda_entry.handler({}, None)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    errors = [line for line in lines if line.get("level") == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["error"].startswith(f"{url} did not answer like AWS STS")


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["plan", "--region", "us-west-2"], "smartvault --region us-west-2 plan"),
        (["audit", "list", "--profile=prod"], "smartvault --profile=prod audit list"),
        (["validate", "-v"], "smartvault -v validate"),
    ],
    ids=["value", "value-with-equals", "flag"],
)
def test_a_global_option_after_the_command_says_where_it_goes(runner, args, hint):
    result = runner.invoke(cli, args, prog_name="smartvault")

    assert result.exit_code == 2
    option = args[-1].split("=")[0] if args[-1] != "us-west-2" else "--region"
    assert f"{option} is a global option: write it before the command: {hint}" in result.stderr


def test_an_unknown_option_that_is_not_global_keeps_clicks_message(runner):
    result = runner.invoke(cli, ["plan", "--regoin", "x"])

    assert result.exit_code == 2
    assert "No such option '--regoin'" in result.stderr
    assert "global option" not in result.stderr
