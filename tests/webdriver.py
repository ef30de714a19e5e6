"""A small W3C WebDriver client over plain urllib, for Debian's chromium and chromedriver.

No test library that downloads its own browser: this drives the ``chromium`` the system
has (``.ci/run`` installs it) through the ``chromedriver`` beside it, started here on
127.0.0.1 at a free port, with a fresh profile in a folder the caller gives. The report
test and bench/bench_report.py use it.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = (
    "the report's browser test needs Debian's chromium and chromium-driver: "
    "apt-get install -y chromium chromium-driver (.ci/run installs them)"
)
#: no network, no first-run work, nothing the browser would fetch on its own
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)
_ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    absent = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    return f"{', '.join(absent)} not found: {INSTALL_HINT}" if absent else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """One headless chromium session; use as a context manager."""

    def __init__(self, profile: Path, timeout: float = 15.0) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.timeout = timeout
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_ready()
            caps = {
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": {
                            "binary": CHROMIUM,
                            "args": [*FLAGS, f"--user-data-dir={profile}"],
                        },
                    }
                }
            }
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except BaseException:
            self.driver.kill()
            self.driver.wait()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/status", timeout=1) as answer:
                    if json.load(answer)["value"].get("ready"):
                        return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline or self.driver.poll() is not None:
                raise RuntimeError(f"chromedriver did not start on port {self.port}")
            time.sleep(0.05)

    def _call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout * 4) as answer:
                return json.load(answer)["value"]
        except urllib.error.HTTPError as exc:
            detail = json.load(exc)["value"]
            raise RuntimeError(f"WebDriver {method} {path}: {detail.get('message')}") from None

    def _s(self, path: str) -> str:
        return f"/session/{self.session}{path}"

    def open(self, url: str) -> None:
        self._call("POST", self._s("/url"), {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body: ``return ...``) in the page."""
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def run_async(self, script: str, *args: Any) -> Any:
        """Run ``script``; it ends by calling ``arguments[arguments.length - 1](value)``."""
        return self._call("POST", self._s("/execute/async"), {"script": script, "args": list(args)})

    def find(self, css: str) -> str:
        found = self._call("POST", self._s("/element"), {"using": "css selector", "value": css})
        return str(found[_ELEMENT])

    def click(self, css: str) -> None:
        self._call("POST", self._s(f"/element/{self.find(css)}/click"), {})

    def type(self, css: str, text: str) -> None:
        """Type ``text`` into an element as key presses (each fires ``input``)."""
        self._call("POST", self._s(f"/element/{self.find(css)}/value"), {"text": text})

    def clear(self, css: str) -> None:
        self._call("POST", self._s(f"/element/{self.find(css)}/clear"), {})

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", self._s("/screenshot"))))
        return path

    def close(self) -> None:
        try:
            self._call("DELETE", self._s(""))
        finally:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
