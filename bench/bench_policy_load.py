"""How SmartVault copes with hostile or huge files, as an operator would meet them. Run by hand:

    python bench/bench_policy_load.py              # every case
    python bench/bench_policy_load.py fifo zero    # only the cases whose name holds a word

Each case runs ``python -m smartvault ...`` in a child process, from this checkout, on files
made in a temporary folder. The figures are the child's wall time and its peak resident
size (``os.wait4``). A child is killed after ``TIMEOUT`` seconds and may use at most
``MEMORY_CAP`` bytes of address space, so a regression shows up as "killed" or a
MemoryError here instead of hanging the machine.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0
MEMORY_CAP = 3 * 1024**3
MIB = 1024 * 1024

POLICY = """\
  - name: {name}
    selector:
      tags: {{backup: "true", team: "t{n}"}}
    schedule:
      expression: cron(0 3 * * ? *)
    retention: {{keep_last: 7, max_age: 30d}}
"""
VALID_ONE = "version: 1\npolicies:\n" + POLICY.format(name="one", n=1)


def _policies(prefix: str, size: int) -> str:
    """A valid file of about ``size`` bytes: many small policies with unique names."""
    parts = ["version: 1\npolicies:\n"]
    total, n = len(parts[0]), 0
    while total < size:
        part = POLICY.format(name=f"{prefix}-{n}", n=n)
        parts.append(part)
        total += len(part)
        n += 1
    return "".join(parts)


def _list_policy(key: str, items: list[str]) -> str:
    """One policy whose ``key`` (``regions`` or ``snapshot.copy_tags``) holds ``items``."""
    flow = "[" + ", ".join(items) + "]"
    text = "version: 1\npolicies:\n" + POLICY.format(name="big", n=0)
    if key == "regions":
        return text + f"    regions: {flow}\n"
    return text + f"    snapshot: {{copy_tags: {flow}}}\n"


def _word(n: int) -> str:
    word = ""
    while True:
        n, letter = divmod(n, 26)
        word += chr(ord("a") + letter)
        if not n:
            return word


def _regions(size: int) -> list[str]:
    """Distinct valid region names (``us-a-1``, ``us-b-1`` ...) filling about ``size`` bytes."""
    items, total, n = [], 0, 0
    while total < size:
        items.append(f"us-{_word(n)}-1")
        total += len(items[-1]) + 2
        n += 1
    return items


def _tag_keys(size: int) -> list[str]:
    items, total, n = [], 0, 0
    while total < size:
        items.append(f"k{n}")
        total += len(items[-1]) + 2
        n += 1
    return items


def _fifo(path: Path) -> None:
    os.mkfifo(path)


# --- the cases: each makes its files in ``tmp`` and returns the command's arguments ---


def zero_link_in_folder(tmp: Path) -> list[str]:
    (tmp / "p").mkdir()
    (tmp / "p" / "zero.yaml").symlink_to("/dev/zero")
    return ["validate", "p"]


def fifo_in_folder(tmp: Path) -> list[str]:
    (tmp / "p").mkdir()
    _fifo(tmp / "p" / "pipe.yaml")
    return ["validate", "p"]


def fifo_named(tmp: Path) -> list[str]:
    _fifo(tmp / "pipe.yaml")
    return ["validate", "pipe.yaml"]


def apply_plan_zero(tmp: Path) -> list[str]:
    (tmp / "one.yaml").write_text(VALID_ONE)
    return ["--region", "us-east-1", "apply", "--yes", "--plan", "/dev/zero", "one.yaml"]


def apply_plan_fifo(tmp: Path) -> list[str]:
    (tmp / "one.yaml").write_text(VALID_ONE)
    _fifo(tmp / "plan.json")
    return ["--region", "us-east-1", "apply", "--yes", "--plan", "plan.json", "one.yaml"]


def twenty_files_of_1mib(tmp: Path) -> list[str]:
    (tmp / "p").mkdir()
    for i in range(20):
        (tmp / "p" / f"f{i:02}.yaml").write_text(_policies(f"f{i}", MIB - 4096))
    return ["validate", "p"]


def one_file_of_20mib(tmp: Path) -> list[str]:
    (tmp / "big.yaml").write_text(_policies("big", 20 * MIB))
    return ["validate", "big.yaml"]


def regions_1mib_late_duplicate(tmp: Path) -> list[str]:
    items = _regions(MIB - 8192)
    items.append(items[-1])
    (tmp / "regions.yaml").write_text(_list_policy("regions", items))
    return ["validate", "regions.yaml"]


def copy_tags_1mib_late_duplicate(tmp: Path) -> list[str]:
    items = _tag_keys(MIB - 8192)
    items.append(items[-1])
    (tmp / "tags.yaml").write_text(_list_policy("copy_tags", items))
    return ["validate", "tags.yaml"]


def regions_1_6mb_late_duplicate(tmp: Path) -> list[str]:
    items = _regions(1_600_000)
    items.append(items[-1])
    (tmp / "regions.yaml").write_text(_list_policy("regions", items))
    return ["validate", "regions.yaml"]


def many_values_no_alias(tmp: Path) -> list[str]:
    items = _tag_keys(MIB - 8192)
    (tmp / "tags.yaml").write_text(_list_policy("copy_tags", items))
    return ["validate", "tags.yaml"]


CASES: dict[str, Callable[[Path], list[str]]] = {
    f.__name__: f
    for f in (
        zero_link_in_folder,
        fifo_in_folder,
        fifo_named,
        apply_plan_zero,
        apply_plan_fifo,
        twenty_files_of_1mib,
        one_file_of_20mib,
        regions_1mib_late_duplicate,
        copy_tags_1mib_late_duplicate,
        regions_1_6mb_late_duplicate,
        many_values_no_alias,
    )
}


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run(name: str, make: Callable[[Path], list[str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        args = make(tmp)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        }
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "smartvault", *args],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_cap_memory,  # no threads here
        )
        killed = False
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > TIMEOUT:
                child.send_signal(signal.SIGKILL)
                killed = True
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        assert child.stderr is not None
        stderr = child.stderr.read().decode("utf-8", "replace").strip().splitlines()
        child.returncode = os.waitstatus_to_exitcode(status)
        outcome = "killed" if killed else f"exit {child.returncode}"
        first = stderr[0][:110] if stderr else ""
        if any("Traceback" in line for line in stderr):
            first = "TRACEBACK: " + stderr[-1][:100]
        print(f"{name:32} {wall:7.2f} s {usage.ru_maxrss / 1024:8.0f} MiB  {outcome:8} {first}")
        sys.stdout.flush()


def main(words: list[str]) -> None:
    print(f"{'case':32} {'wall':>9} {'peak RSS':>12}  outcome  first line of stderr")
    for name, make in CASES.items():
        if not words or any(word in name for word in words):
            run(name, make)


if __name__ == "__main__":
    main(sys.argv[1:])
