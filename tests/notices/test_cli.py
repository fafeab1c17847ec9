"""`twinpacs notice post|list|clear` as an operator runs it: a subprocess against a live site."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.notices.conftest import Receiver
from tests.notices.test_webhooks import closed_port


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "twinpacs", "notice", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def twinpacs(*args: str) -> subprocess.CompletedProcess[str]:
    return finish(start(*args))


def test_post_list_clear(live_url: str, receiver: Receiver) -> None:
    posted = twinpacs("post", "--url", live_url, "--title", "Site B <down>", "--body", "Use A",
                      "--severity", "critical", "--by", "judy", "--json")
    assert posted.returncode == 0, posted.stderr
    notice = json.loads(posted.stdout)
    assert notice["title"] == "Site B <down>" and notice["posted_by"] == "judy"

    table = twinpacs("list", "--url", live_url)
    assert table.returncode == 0, table.stderr
    assert "Site B <down>" in table.stdout and "1 active notice(s)" in table.stdout

    cleared = twinpacs("clear", str(notice["id"]), "--url", live_url, "--by", "kim")
    assert cleared.returncode == 0 and f"notice {notice['id']} cleared" in cleared.stdout
    listed = json.loads(twinpacs("list", "--all", "--url", live_url, "--json").stdout)
    assert [(n["id"], n["active"]) for n in listed] == [(notice["id"], False)]
    assert [e["event"] for e in receiver.wait_for(2)] == ["notice.posted", "notice.cleared"]


def test_failures_and_usage(live_url: str) -> None:
    """Independent cases, run side by side (each CLI start costs about a second)."""
    running = [start("clear", "4242", "--url", live_url),
               start("list", "--url", f"http://127.0.0.1:{closed_port()}"),
               start("post", "--url", live_url, "--title", "x", "--severity", "fatal")]
    missing, unreachable, bad = (finish(p) for p in running)
    assert missing.returncode == 1 and "no notice with id 4242" in missing.stderr
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
    assert bad.returncode == 2 and "severity" in bad.stderr
