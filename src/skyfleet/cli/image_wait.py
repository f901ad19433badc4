"""``--wait`` of the ``skyfleet image`` commands: follow an image's copies as a user would, by asking
the API once a second, until every site's copy is in sync or failed (or, after a delete, the image
is gone).

Why it is its own module: the commands only build requests; how far a copy got is a small piece of
arithmetic over successive answers that deserves its own tests. An image in mode ``controlled``
goes out in waves, and the sites of a later wave have no copy to wait for yet: its wait also lasts
while the rollout of the current version is ``running`` (it ends when the rollout is done, paused
or aborted). Progress is counted in bytes: a copy
under way counts the bytes its site reported, a copy in sync counts as the whole image, and the
total is the image's size (every copy is of the same source, so one site's reported total is every
site's) times the copies expected. A failed copy leaves both sums. Until some site has reported a
size (a small image may be copied between two looks), progress is counted in sites instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from skyfleet.cli.client import ApiFailure
from skyfleet.cli.output import err_console

POLL_SECONDS = 1.0
SETTLED = ("in-sync", "failed")
UNITS = ("B", "KB", "MB", "GB", "TB")


class Reader(Protocol):
    """What a wait needs of the API client: a GET."""

    def get(self, path: str, **params: Any) -> Any: ...


def image_path(ref: str) -> str:
    return f"/v1/images/{quote(ref, safe='')}"


def human(size: float) -> str:
    """Bytes in decimal units, as Glance and most tools print them."""
    for unit in UNITS:
        if size < 1000 or unit == UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@dataclass
class Tally:
    """One look at an image's copies: where each stands and how many bytes are done."""

    sites: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes_done: int = 0
    bytes_total: int | None = None
    gone: bool = False
    rollout: dict[str, Any] | None = None  # the controlled rollout of the current version, if any

    @property
    def settled(self) -> bool:
        if self.gone:
            return True
        if self.rollout is not None and self.rollout.get("state") == "running":
            return False  # the next wave starts once this one is judged
        return sum(self.counts.get(s, 0) for s in SETTLED) == self.sites

    @property
    def stopped(self) -> str | None:
        """Why a controlled rollout stopped short (paused or aborted), if it did."""
        if self.rollout is None or self.rollout.get("state") not in ("paused", "aborted"):
            return None
        return str(self.rollout.get("reason") or self.rollout["state"])

    def describe(self, *, percent: bool = True) -> str:
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "no copies"
        if self.bytes_total:
            share = f" ({100 * self.bytes_done // self.bytes_total}%)" if percent else ""
            text = f"{human(self.bytes_done)} of {human(self.bytes_total)}{share}; {states}"
        else:
            text = f"{states} of {self.sites} site(s)"
        if self.rollout is not None:
            waves = len(self.rollout.get("waves") or [])
            text += f"; rollout {self.rollout.get('state')}, wave {int(self.rollout.get('wave') or 0) + 1} of {waves}"
        return text


class Sizes:
    """What the sites reported so far: each copy's last total and bytes (kept across looks)."""

    def __init__(self) -> None:
        self.total: dict[str, int] = {}

    def image_size(self) -> int | None:
        return max(self.total.values()) if self.total else None

    def tally(self, bindings: Iterable[dict[str, Any]]) -> Tally:
        rows = list(bindings)
        for b in rows:
            total = (b.get("progress") or {}).get("total")
            if isinstance(total, int) and total > 0:
                self.total[b["site_name"]] = total
        size = self.image_size()
        out = Tally(sites=len(rows))
        for b in rows:
            status = str(b["status"])
            out.counts[status] = out.counts.get(status, 0) + 1
            if status == "failed":
                out.failed.append((b["site_name"], b.get("error") or "failed"))
                continue
            whole = self.total.get(b["site_name"], size or 0)
            if status == "in-sync":
                out.bytes_done += whole
            elif status == "copying":
                out.bytes_done += int((b.get("progress") or {}).get("bytes") or 0)
        if size:
            out.bytes_total = sum(self.total.get(b["site_name"], size) for b in rows if b["status"] != "failed")
        return out


@dataclass
class Outcome:
    """How a wait ended: the last answer (None once the image is gone), its tally, and a timeout."""

    body: dict[str, Any] | None
    tally: Tally
    timed_out: bool


def follow(client: Reader, ref: str, *, name: str, timeout: float, only_site: str | None = None,
           until_gone: bool = False, interval: float = POLL_SECONDS,
           sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Ask for the image every ``interval`` seconds until its copies settle (or it is gone, with
    ``until_gone``) or ``timeout`` seconds passed; show a bar on a terminal, plain lines elsewhere."""
    sizes, deadline = Sizes(), time.monotonic() + timeout
    with _Display(name) as display:
        while True:
            body = _look(client, ref, until_gone=until_gone)
            bindings = [] if body is None else [b for b in body["bindings"]
                                                if only_site in (None, b["site_name"], b["site_id"])]
            tally = sizes.tally(bindings)
            tally.gone, tally.rollout = body is None, None if only_site else _rollout_of(body)
            display.show(tally)
            if tally.settled or time.monotonic() >= deadline:
                return Outcome(body, tally, timed_out=not tally.settled)
            sleep(interval)


def _rollout_of(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The controlled rollout of the image's current version (an older one's is history)."""
    found = ((body or {}).get("options") or {}).get("rollout")
    if isinstance(found, dict) and found.get("generation") == (body or {}).get("generation"):
        return found
    return None


def _look(client: Reader, ref: str, *, until_gone: bool) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = client.get(image_path(ref))
    except ApiFailure as exc:
        if until_gone and exc.status == 404:
            return None
        raise
    return body


class _Display:
    """A rich progress bar on a terminal; elsewhere (scripts, CI, tests) a plain line per change."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.last = ""

    def __enter__(self) -> _Display:
        if err_console.is_terminal:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=err_console)
            self.bar.start()
            self.task = self.bar.add_task(self.name, total=None, detail="")
        return self

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def show(self, tally: Tally) -> None:
        line = "gone" if tally.gone else tally.describe()
        if self.bar is not None and self.task is not None:
            total, done = (tally.bytes_total, tally.bytes_done) if tally.bytes_total else \
                (tally.sites or None, sum(tally.counts.get(s, 0) for s in SETTLED))
            self.bar.update(self.task, total=total, completed=done,  # the bar shows the percentage
                            detail="gone" if tally.gone else tally.describe(percent=False))
        elif line != self.last:
            err_console.print(f"{self.name}: {line}", soft_wrap=True, markup=False, highlight=False)
        self.last = line
