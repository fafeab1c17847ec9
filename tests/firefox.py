"""Debian's Firefox ESR, headless, driven over WebDriver BiDi (the W3C protocol Firefox serves
itself with --remote-debugging-port): no geckodriver, which Debian does not ship, and no browser
download. Playwright's own Firefox support needs newer BiDi commands than the ESR has.

The profile sends every request for another host to a closed loopback port, so the browser
reaches nothing but the servers the test started on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

FIREFOX = "/usr/bin/firefox-esr"
START_TIMEOUT_S = 60.0
CLOSED_PORT = 9  # discard: nothing listens there on this machine
PREFS = {
    # everything not on loopback goes to a proxy that does not exist
    "network.proxy.type": 1, "network.proxy.allow_hijacking_localhost": False,
    **{f"network.proxy.{kind}": "127.0.0.1" for kind in ("http", "ssl", "socks")},
    **{f"network.proxy.{kind}_port": CLOSED_PORT for kind in ("http", "ssl", "socks")},
    "network.proxy.socks_remote_dns": True, "network.trr.mode": 5, "network.dns.disablePrefetch": True,
    "network.dns.forceResolve": "127.0.0.1",  # no name is ever sent to a DNS server
    "network.predictor.enabled": False, "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    # and the browser's own services are off
    "services.settings.server": f"http://127.0.0.1:{CLOSED_PORT}/v1", "app.normandy.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False, "toolkit.telemetry.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False, "datareporting.healthreport.uploadEnabled": False,
    "browser.safebrowsing.malware.enabled": False, "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False, "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False, "browser.startup.homepage_override.mstone": "ignore",
}
_LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


class BidiError(AssertionError):
    pass


class Firefox:
    """One headless Firefox with one BiDi session and its first tab."""

    def __init__(self) -> None:
        if not shutil.which(FIREFOX):
            pytest.fail(f"{FIREFOX} is missing: run scripts/setup.sh (Debian package firefox-esr)")
        self.profile = Path(tempfile.mkdtemp(prefix="twinpacs-firefox-"))
        (self.profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items()), "utf-8")
        self.process = subprocess.Popen(
            [FIREFOX, "--headless", "--no-remote", "--profile", str(self.profile), "--remote-debugging-port=0",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._ids = itertools.count(1)
        self._connection = contextlib.ExitStack()
        self.socket: ClientConnection = self._connection.enter_context(
            connect(self._address() + "/session", max_size=None, open_timeout=START_TIMEOUT_S))
        self.send("session.new", {"capabilities": {}})
        self.tab = self.send("browsingContext.getTree", {"maxDepth": 0})["contexts"][0]["context"]

    def _address(self) -> str:
        assert self.process.stderr is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        for line in self.process.stderr:  # Firefox says where it listens once it does
            if found := _LISTENING.search(line):
                self.process.stderr.close()  # nothing more is read: its later chatter must not block it
                return found[1]
            if time.monotonic() > deadline:
                break
        self.close()
        raise BidiError("Firefox did not start its WebDriver BiDi listener")

    def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            answer = json.loads(self.socket.recv(timeout=START_TIMEOUT_S))
            if answer.get("id") != number:
                continue  # an event: none is subscribed to, but a stray one must not confuse us
            if answer.get("type") == "error":
                raise BidiError(f"{method}: {answer.get('error')}: {answer.get('message')}")
            result: dict[str, Any] = answer["result"]
            return result

    def goto(self, url: str) -> None:
        self.send("browsingContext.navigate", {"context": self.tab, "url": url, "wait": "complete"})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        found = self.send("script.evaluate", {"expression": expression, "target": {"context": self.tab},
                                              "awaitPromise": True, "serializationOptions": {"maxObjectDepth": 2}})
        if found["type"] == "exception":
            raise BidiError(f"{expression}: {found['exceptionDetails'].get('text')}")
        return _plain(found["result"])

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Evaluate until the value is truthy (a wait for the page, not a timed assertion)."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise BidiError(f"timed out waiting for {expression}")
            time.sleep(0.05)
        return value

    def press(self, *keys: str) -> None:
        """Each key pressed and released, as a person types it, in the focused element."""
        actions = [a for key in keys for a in ({"type": "keyDown", "value": key}, {"type": "keyUp", "value": key})]
        self.send("input.performActions", {"context": self.tab, "actions": [
            {"type": "key", "id": "keyboard", "actions": actions}]})

    def screenshot(self, path: Path) -> None:
        data = self.send("browsingContext.captureScreenshot", {"context": self.tab})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if getattr(self, "socket", None) is not None:
                self.send("session.end", {})
                self._connection.close()
        except Exception:  # the browser may be gone already; it is stopped below in any case
            pass
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        shutil.rmtree(self.profile, ignore_errors=True)


def _plain(value: dict[str, Any]) -> Any:
    """A BiDi remote value as Python: primitives, arrays and plain objects."""
    kind = value["type"]
    if kind in ("undefined", "null"):
        return None
    if kind == "array":
        return [_plain(v) for v in value.get("value", [])]
    if kind == "object":
        return {k if isinstance(k, str) else _plain(k): _plain(v) for k, v in value.get("value", [])}
    return value.get("value")
