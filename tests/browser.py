"""Drive headless Chromium over the DevTools protocol, for tests of the HTML report.

A small client of the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (the
browser reads commands on fd 3 and writes replies and events on fd 4, each a JSON
message ended by a NUL byte), so no package beyond the standard library and no TCP port
is needed. ``load_page`` opens a local file with the network off, waits for it to load,
and returns what the tests check: console errors, uncaught exceptions, every URL the page
requested, the result of a script run in the page, and a full-page screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# No network on the test machine: every flag that makes the browser call home is off.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]


@dataclass
class PageResult:
    console_errors: list[str] = field(default_factory=list)  # console.error/assert, Log entries of level error
    console_warnings: list[str] = field(default_factory=list)  # console.warn: the page's own scripts complaining
    exceptions: list[str] = field(default_factory=list)  # uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    evaluated: object = None  # the value of the script passed to load_page
    screenshot: Path | None = None


class DevToolsPipe:
    """One browser process and its DevTools pipe."""

    def __init__(self, width: int, height: int, binary: str = CHROMIUM):
        self.profile = tempfile.mkdtemp(prefix="rlplan-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # bash moves the browser's two ends to the fds the protocol uses (3 and 4); they
        # are first moved above 9 so that neither already is 3 or 4 (a redirection would clobber it).
        to_browser_r, from_browser_w = _above_nine(to_browser_r), _above_nine(from_browser_w)
        args = [binary, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"]
        self.process = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}', "bash", *args],  # dash: fds < 10 only
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        """Send one command and wait for its reply (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        """The first event called ``method`` (already received or arriving before the timeout)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from chromium in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited: {self._stderr_tail()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _stderr_tail(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.send("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)
        self.process.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def _above_nine(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


def load_page(html: Path, screenshot: Path, script: str = "null", ready: str = "true",
              width: int = 1400, height: int = 3000, timeout: float = 90) -> PageResult:
    """Open ``html`` in headless Chromium, wait for the load event and for the expression
    ``ready`` to be true, evaluate ``script`` (its JSON value is returned), and write a
    screenshot of the whole page (``width`` wide, at least ``height`` tall) to ``screenshot``."""
    browser = DevToolsPipe(width, height)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.send("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", timeout)
        deadline = time.monotonic() + timeout
        while not _evaluate(browser, session, ready):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never became ready ({ready})")
            time.sleep(0.2)
        result = PageResult(evaluated=_evaluate(browser, session, script))
        full = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": max(height, int(full["height"])), "deviceScaleFactor": 1,
                      "mobile": False}, session=session)
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                            session=session, timeout=timeout)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        result.screenshot = screenshot
        _collect(browser.events, result)
        return result
    finally:
        browser.close()


def _evaluate(browser: DevToolsPipe, session: str, expression: str):
    reply = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
    if "exceptionDetails" in reply:
        raise RuntimeError(f"script failed: {reply['exceptionDetails'].get('text')}: {expression[:200]}")
    return reply["result"].get("value")


def _collect(events: list[dict], result: PageResult) -> None:
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            if params.get("type") in ("error", "assert"):
                result.console_errors.append(text)
            elif params.get("type") == "warning":
                result.console_warnings.append(text)
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            result.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":  # failed loads, CSP, network: what DevTools shows in red
                result.console_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            result.requests.append(params.get("request", {}).get("url", ""))
