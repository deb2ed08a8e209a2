"""The HTML report in a real browser: headless Chromium renders it, logs no errors, loads nothing.

Console errors are read over the Chrome DevTools Protocol on `--remote-debugging-pipe`
(file descriptors 3 and 4, NUL-terminated JSON; standard library only). That sees what
`--enable-logging=stderr` cannot tell apart or does not log at all: uncaught exceptions
(Runtime.exceptionThrown), console.error/console.assert calls (Runtime.consoleAPICalled),
and browser-side errors such as failed resource loads (Log.entryAdded, level "error").
A page with deliberate errors proves each of these is caught.

Without Chromium these tests skip, unless DLGRADE_REQUIRE_BROWSER=1 makes that a failure.
Set DLGRADE_REPORT_SCREENSHOT=/some/file.png to also keep a full-page screenshot of the
example report.
"""
from __future__ import annotations

import base64
import fcntl
import importlib.util
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grader.render.html import render_html

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
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
    "--hide-scrollbars",
    "--mute-audio",
)
TIMEOUT = 90  # seconds for one browser run; a cold start on a busy machine takes a few

# The builders live with the renderer tests; load them by path so this works in any import mode.
_spec = importlib.util.spec_from_file_location("_dlgrade_render_cases", Path(__file__).with_name("test_render.py"))
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)


def _candidates() -> tuple[str, ...]:
    explicit = os.environ.get("DLGRADE_CHROMIUM")
    return (explicit,) if explicit else CHROMIUM_CANDIDATES


def _find_chromium() -> str | None:
    for candidate in _candidates():
        path = shutil.which(candidate)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _find_chromium()
    if path is None:
        reason = f"headless Chromium not found (looked for {', '.join(_candidates())}; DLGRADE_CHROMIUM names another)"
        if os.environ.get("DLGRADE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " and DLGRADE_REQUIRE_BROWSER=1")
        pytest.skip(reason)
    return path


# --------------------------------------------------------------------------- command line runs


def run_cli(chromium: str, url: str, *extra: str) -> subprocess.CompletedProcess:
    """One headless run with a fresh profile (--dump-dom, --screenshot=...)."""
    with tempfile.TemporaryDirectory(prefix="dlgrade-chromium-") as profile:
        return subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True, timeout=TIMEOUT, cwd=profile,
        )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


# --------------------------------------------------------------------------- DevTools over a pipe


class DevTools:
    """A headless Chromium driven over --remote-debugging-pipe, with one page attached."""

    def __init__(self, chromium: str):
        self._profile = tempfile.mkdtemp(prefix="dlgrade-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4. Move our ends out of
        # the way (>= 10) so a tiny trampoline can dup2 them onto 3 and 4 without clobbering.
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        trampoline = (
            "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); "
            "os.dup2(r, 3); os.dup2(w, 4); os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])"
        )
        args = [chromium, *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-pipe", "about:blank"]
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", trampoline, str(child_r), str(child_w), *args],
            pass_fds=(child_r, child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self._stderr, cwd=self._profile,
        )
        os.close(child_r)
        os.close(child_w)
        self._buffer = bytearray()
        self._next_id = 0
        self.events: list[dict] = []
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Page", "Network"):
                self.call(f"{domain}.enable", session=True)
        except Exception:
            self.close()
            raise

    def _send(self, method: str, params: dict | None, session: bool) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict | None:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                return None
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the DevTools pipe:\n{self.stderr()}")
            self._buffer += chunk
        end = self._buffer.index(b"\0")
        message = json.loads(self._buffer[:end])
        del self._buffer[: end + 1]
        return message

    def call(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline)
            if message is None:
                raise TimeoutError(f"no reply to {method} in {TIMEOUT}s:\n{self.stderr()}")
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def load(self, url: str, settle: float = 0.5) -> "PageLoad":
        """Navigate, wait for the load event and `settle` quiet seconds, and report what happened."""
        first = len(self.events)
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + TIMEOUT
        loaded_at = None
        while True:
            now = time.monotonic()
            if loaded_at is not None and now - loaded_at >= settle:
                break
            if now >= deadline:
                raise TimeoutError(f"{url} did not finish loading in {TIMEOUT}s")
            message = self._receive(min(deadline, now + 0.1))
            if message is not None:
                self.events.append(message)
                if message.get("method") == "Page.loadEventFired":
                    loaded_at = time.monotonic()
        return PageLoad(self.events[first:])

    def set_viewport(self, width: int, height: int) -> None:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics, session=True)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def full_page_png(self) -> bytes:
        metrics = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": metrics["width"], "height": metrics["height"], "scale": 1}
        shot = self.call("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, session=True)
        return base64.b64decode(shot["data"])

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._send("Browser.close", None, False)
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "DevTools":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PageLoad:
    """The DevTools events of one page load, sorted into what the tests ask about."""

    def __init__(self, events: list[dict]):
        self.events = events
        self.errors: list[str] = []
        self.requests: list[str] = []
        for event in events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                description = details.get("exception", {}).get("description") or details.get("text")
                self.errors.append(f"uncaught exception: {description}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                self.errors.append(f"console.{params['type']}: {text}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
            elif method == "Inspector.targetCrashed":
                self.errors.append("the page crashed")
            elif method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def example_page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(cases.build_example_report()), encoding="utf-8")
    return path


def test_report_renders_with_no_console_errors_and_no_requests(chromium, example_page):
    url = example_page.as_uri()
    with DevTools(chromium) as browser:
        load = browser.load(url)
        assert load.errors == []
        # Self-contained: the browser fetched the file itself and nothing else.
        assert load.requests and all(u == url or u.startswith("data:") for u in load.requests), load.requests
        text = browser.evaluate("document.body.innerText")
        assert "16.5 / 19" in text
        assert "+ 6 points graded by course staff, pending" in text
        assert browser.evaluate("document.querySelectorAll('table.layers tbody tr').length") == 12
        assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)") is True
        assert browser.evaluate("document.images.length") == 2
        # Layout: at phone and desktop widths the page never scrolls sideways (a wide table
        # scrolls inside its own box), and at desktop width the layer table fits as it is.
        for width in (420, 1280):
            browser.set_viewport(width, 900)
            assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth") is True, width
        assert browser.evaluate("(s => s.scrollWidth <= s.clientWidth)(document.querySelector('.table-scroll'))") is True
        keep = os.environ.get("DLGRADE_REPORT_SCREENSHOT")
        if keep:
            Path(keep).write_bytes(browser.full_page_png())


def test_hostile_report_runs_no_script(chromium, tmp_path):
    page = tmp_path / "hostile.html"
    page.write_text(render_html(cases.hostile_report()), encoding="utf-8")
    with DevTools(chromium) as browser:
        browser.call("Page.addScriptToEvaluateOnNewDocument", {"source": "window.alert = (x) => { window.__alerted = String(x); };"}, session=True)
        load = browser.load(page.as_uri())
        assert load.errors == []
        assert browser.evaluate("window.__alerted === undefined") is True
        assert browser.evaluate("document.scripts.length") == 0
        assert cases.HOSTILE in browser.evaluate("document.body.innerText")


def test_console_error_detection_catches_deliberate_errors(chromium, tmp_path):
    """The check above can fail: each kind of error on a broken page is reported."""
    clean = tmp_path / "clean.html"
    clean.write_text("<!DOCTYPE html><title>ok</title><p>fine</p><script>console.log('just a log')</script>")
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><title>broken</title><p>broken page</p>"
        "<script>console.error('deliberate console error');</script>"
        "<script>notDefinedAnywhere();</script>"
        '<img src="missing-image.png" alt="">'
    )
    with DevTools(chromium) as browser:
        assert browser.load(clean.as_uri()).errors == []
        errors = browser.load(broken.as_uri()).errors
    joined = "\n".join(errors)
    assert "console.error: deliberate console error" in joined
    assert "uncaught exception: ReferenceError: notDefinedAnywhere is not defined" in joined
    assert "Failed to load resource" in joined and "missing-image.png" in joined
    assert len(errors) == 3, errors


def test_dump_dom_contains_score_and_table(chromium, example_page):
    result = run_cli(chromium, example_page.as_uri(), "--dump-dom")
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    dom = result.stdout.decode()
    assert '<span class="score-num">16.5</span> <span class="score-max">/ 19</span>' in dom
    assert '<table class="layers">' in dom and dom.count('<tr class="row-') == 12
    assert "data:image/png;base64," in dom


def test_screenshot_is_not_blank(chromium, example_page, tmp_path):
    shot, blank_shot = tmp_path / "report.png", tmp_path / "blank.png"
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><title>blank</title>")
    for url, out in ((example_page.as_uri(), shot), (blank.as_uri(), blank_shot)):
        result = run_cli(chromium, url, f"--screenshot={out}", "--window-size=1280,1600")
        assert result.returncode == 0 and out.exists(), result.stderr.decode(errors="replace")[-2000:]
    assert png_size(shot) == (1280, 1600)
    print(f"screenshot {shot.stat().st_size} bytes, blank page {blank_shot.stat().st_size} bytes")
    # A blank page compresses to a few KB; a rendered report with text, colour and images does not.
    assert shot.stat().st_size > 40_000
    assert shot.stat().st_size > 5 * blank_shot.stat().st_size


def _scores_report():
    """A predictions check with its per-class table and confusion matrix, and an activation grid."""
    from grader.render.png import grid
    from grader.results import Artifact, CheckResult, GradeReport, Status

    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    confusion = [[90 if i == j else (10 if j == (i + 1) % 10 else 0) for j in range(10)] for i in range(10)]
    per_class = [{"class": i, "name": n, "total": 100, "correct": 90, "accuracy": 0.9} for i, n in enumerate(names)]
    details = {"predictions": {"accuracy": 0.9, "correct": 900, "total": 1000, "per_class": per_class,
                               "confusion": confusion, "class_names": names}}
    report = GradeReport(assignment="ece661-hw2", title="ECE 661 HW2", submission="sub")
    report.checks = [
        CheckResult("predictions.test.accuracy", "Accuracy on the test set", "L3", "4.7", 12, 12, Status.PASSED,
                    message="Accuracy on the 1,000 held-out images: 90.00%.", details=details),
        CheckResult("activations.maps", "Activation maps", "Q2", "2.1", 4, 4, Status.PASSED, message="Drawn.",
                    details={"images": ["activations/a-conv1.png"]}),
    ]
    report.artifacts["activations/a-conv1.png"] = Artifact("image/png", grid(bytes(range(256)) * 8, 32, 8, 8),
                                                           caption="a: conv layer 1, 32 maps of 8x8")
    return report


def test_predictions_tables_and_activation_grid_render(chromium, tmp_path):
    page = tmp_path / "scores.html"
    page.write_text(render_html(_scores_report()), encoding="utf-8")
    with DevTools(chromium) as browser:
        load = browser.load(page.as_uri())
        assert load.errors == []
        rows = browser.evaluate("document.querySelectorAll('table.per-class tbody tr').length")
        assert rows == 10
        assert browser.evaluate("document.querySelectorAll('table.confusion tbody tr').length") == 10
        assert browser.evaluate("document.querySelectorAll('table.confusion td.diagonal').length") == 10
        assert browser.evaluate("document.querySelector('table.confusion td.diagonal').textContent") == "90"
        assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)") is True
        for width in (420, 1280):
            browser.set_viewport(width, 900)
            assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth") is True, width
