"""``skyfleet events --follow`` against a live server: new events print as they are committed, once
each, across the server ending its stream (events_stream_max_seconds, 2 s in tests) and the client
resuming with Last-Event-ID."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from typer.testing import CliRunner

from skyfleet.api.runtime import Runtime
from skyfleet.cli.main import app, hoist_global_options
from skyfleet.db.engine import transaction
from skyfleet.domains.events import service as events

runner = CliRunner()


def test_follow_prints_each_new_event_once_across_reconnections(
        live_server: Callable[[Runtime], str], runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory(None, None)
    url = live_server(runtime)

    def record(message: str, kind: str = "site.availability") -> None:
        with transaction(runtime.factory) as session:
            events.record(session, kind=kind, message=message)

    record("before following")

    def later() -> None:
        for delay, message in ((0.6, "first"), (1.0, "ignored kind"), (1.6, "second"), (2.6, "third")):
            time.sleep(delay - (time.monotonic() - started))
            record(message, kind="site.created" if message == "ignored kind" else "site.availability")

    started = time.monotonic()
    writer = threading.Thread(target=later)
    writer.start()
    result = runner.invoke(app, hoist_global_options(
        ["--url", url, "events", "--follow", "--for", "4", "--kind", "site.availability", "-f", "json"]),
        env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    writer.join()
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [e["message"] for e in printed] == ["first", "second", "third"]
    assert [e["id"] for e in printed] == sorted(e["id"] for e in printed)
    assert 4 <= time.monotonic() - started < 10


def test_follow_names_the_reason_of_a_refusal_in_one_line(live_server: Callable[[Runtime], str],
                                                          runtime_factory: Callable[..., Runtime]) -> None:
    url = live_server(runtime_factory(None, None))
    result = runner.invoke(app, hoist_global_options(["--url", url, "events", "--follow", "--since",
                                                      "2026-01-01T00:00:00+00:00", "--site", "nowhere"]),
                           env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    assert result.exit_code == 1 and "404" in result.output and "nowhere" in result.output
    assert "Traceback" not in result.output
