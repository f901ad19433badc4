"""The arithmetic of ``skyfleet image ... --wait``: bytes done over bytes expected across successive
looks, settling, the one-site filter of ``use``, the timeout, and the bar drawn on a terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from skyfleet.cli import image_wait
from skyfleet.cli.client import ApiFailure
from skyfleet.cli.image_wait import Sizes, follow, human

MB = 1_000_000


def binding(site: str, status: str, done: int | None = None, total: int | None = None,
            error: str | None = None) -> dict[str, Any]:
    progress = {"bytes": done, "total": total, "at": "2026-12-07T00:00:00Z"} if done is not None else None
    return {"site_name": site, "site_id": f"id-{site}", "status": status, "progress": progress, "error": error}


def test_bytes_under_way_and_done_over_the_bytes_expected() -> None:
    sizes = Sizes()
    first = sizes.tally([binding("a", "pending"), binding("b", "pending")])
    assert (first.bytes_done, first.bytes_total, first.settled) == (0, None, False)
    assert first.describe() == "2 pending of 2 site(s)"  # no size known yet: counted in sites
    under_way = sizes.tally([binding("a", "in-sync"), binding("b", "copying", 1 * MB, 4 * MB)])
    assert (under_way.bytes_done, under_way.bytes_total) == (5 * MB, 8 * MB)  # a: whole image (same source)
    assert under_way.describe() == "5.0 MB of 8.0 MB (62%); 1 copying, 1 in-sync"
    done = sizes.tally([binding("a", "in-sync"), binding("b", "in-sync")])  # b's total kept from the last look
    assert (done.bytes_done, done.bytes_total, done.settled) == (8 * MB, 8 * MB, True)


def test_a_failed_copy_leaves_both_sums_and_is_listed() -> None:
    sizes = Sizes()
    tally = sizes.tally([binding("a", "copying", 3 * MB, 4 * MB), binding("b", "failed", error="HTTP 500"),
                         binding("c", "unknown")])
    assert (tally.bytes_done, tally.bytes_total) == (3 * MB, 8 * MB)
    assert tally.failed == [("b", "HTTP 500")] and not tally.settled  # c's site is offline: not settled


def test_a_running_rollout_is_not_settled_and_a_paused_one_says_why() -> None:
    tally = Sizes().tally([binding("a", "in-sync")])
    tally.rollout = {"state": "running", "wave": 0, "waves": [["a"], ["b"]]}
    assert not tally.settled and tally.describe() == "1 in-sync of 1 site(s); rollout running, wave 1 of 2"
    tally.rollout = {"state": "paused", "wave": 1, "waves": [["a"], ["b"]], "reason": "wave 2: 1 site(s) failed"}
    assert tally.settled and tally.stopped == "wave 2: 1 site(s) failed"
    tally.rollout = {"state": "done", "wave": 1, "waves": [["a"], ["b"]]}
    assert tally.settled and tally.stopped is None


def test_nothing_to_copy_is_settled_at_once() -> None:
    assert Sizes().tally([]).settled


def test_human_sizes() -> None:
    assert [human(n) for n in (0, 999, 1000, 3_150_049, 5 * 10**12)] == ["0 B", "999 B", "1.0 KB", "3.2 MB",
                                                                          "5.0 TB"]


class Answers:
    """A client whose GETs return prepared bodies (the last one again and again)."""

    def __init__(self, *bodies: dict[str, Any] | None) -> None:
        self.bodies: list[dict[str, Any] | None] = list(bodies)
        self.paths: list[str] = []

    def get(self, path: str, **_: Any) -> dict[str, Any]:
        self.paths.append(path)
        body = self.bodies.pop(0) if len(self.bodies) > 1 else self.bodies[0]
        if body is None:
            raise ApiFailure("404 Not Found: no desired image", 404)
        return body


def image(*bindings: dict[str, Any]) -> dict[str, Any]:
    return {"id": "i1", "name": "img one", "bindings": list(bindings)}


def test_follow_asks_once_a_second_until_settled_and_only_for_the_used_site() -> None:
    slept: list[float] = []
    client = Answers(image(binding("a", "copying", 1, 2), binding("b", "copying", 1, 2)),
                     image(binding("a", "in-sync"), binding("b", "copying", 1, 2)))
    outcome = follow(client, "img one", name="img one", timeout=60, only_site="a",
                     sleep=slept.append)
    assert not outcome.timed_out and outcome.tally.sites == 1 and slept == [1.0]
    assert client.paths == ["/v1/images/img%20one"] * 2


def test_follow_stops_at_the_timeout_and_when_the_image_is_gone() -> None:
    stuck = follow(Answers(image(binding("a", "pending"))), "i1", name="x", timeout=0,
                   sleep=lambda _: None)
    assert stuck.timed_out and not stuck.tally.settled
    gone = follow(Answers(image(binding("a", "pending")), None), "i1", name="x", timeout=60,
                  until_gone=True, sleep=lambda _: None)
    assert gone.body is None and gone.tally.gone and not gone.timed_out
    with pytest.raises(ApiFailure):  # without until_gone a 404 is an error
        follow(Answers(None), "i1", name="x", timeout=60, sleep=lambda _: None)


def test_a_terminal_gets_a_bar_and_anything_else_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(image_wait, "err_console", Console(file=screen, force_terminal=True, width=120))
    answers = Answers(image(binding("a", "copying", 2 * MB, 4 * MB)), image(binding("a", "in-sync")))
    follow(answers, "i1", name="img", timeout=60, sleep=lambda _: None)
    assert "━" in screen.getvalue() and "100%" in screen.getvalue()
    plain = io.StringIO()
    monkeypatch.setattr(image_wait, "err_console", Console(file=plain, force_terminal=False, width=40))
    answers = Answers(image(binding("a", "copying", 2 * MB, 4 * MB)), image(binding("a", "copying", 2 * MB, 4 * MB)),
                      image(binding("a", "in-sync")))
    follow(answers, "i1", name="img", timeout=60, sleep=lambda _: None)
    assert plain.getvalue().splitlines() == ["img: 2.0 MB of 4.0 MB (50%); 1 copying",  # once: it did not change
                                             "img: 4.0 MB of 4.0 MB (100%); 1 in-sync"]
