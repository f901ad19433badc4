"""The inventory facts of a placement decision, kept in memory until the inventory changes.

Why it exists: a decision over a thousand sites spent most of its time reading the same rows again
(every site's hypervisors, the flavor and the image asked for), although they change only when an
inventory refresh writes them, once a minute at most. Here they are read for the whole fleet once
and reused by every decision until the stored inventory of those kinds changes.

Freshness is checked by every decision, not by a timer: one indexed query reads the newest change
time and the row count of the cached kinds. A refresh that inserts or updates a row moves the
change time (every write stamps ``changed_at``); one that only deletes rows changes the count. So a
decision never sees older facts than the store holds at its start, in any process. What is not
cached is read per decision as before: the sites and their state, labels, the caller's projects
and quota.

Written here rather than with a caching library: the entries are valid for a version of the data,
not for a time (cachetools' TTL would either serve stale facts or expire them for nothing).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skyfleet.domains.inventory.models import InventoryItem
from skyfleet.domains.placement import facts
from skyfleet.domains.sites.models import Site

#: The inventory kinds whose facts are cached.
KINDS = ("hypervisors", "flavors", "images", "availability_zones")
#: Flavor and image names kept at once (each holds a record per site that has it: at 10,000 sites,
#: about 1.5 MB per name).
MAX_NAMES = 8
Version = tuple[str, datetime | None, int]
T = TypeVar("T")


def version(session: Session) -> Version:
    """The database, and the newest change time and row count of the cached kinds in it (one indexed
    query). The database is part of the version so that a process using several (tests do) never
    serves one's facts for another's."""
    bind = session.get_bind()
    row = facts.run(session, select(func.max(InventoryItem.changed_at), func.count())
                    .where(InventoryItem.kind.in_(KINDS))).one()
    return f"{id(bind)}:{bind.engine.url}", row[0], int(row[1])


@dataclass
class _Entry:
    version: Version
    capacity: dict[str, dict[str, int]] | None = None
    zones: dict[str, dict[str, bool]] | None = None
    flavors: OrderedDict[str, dict[str, list[facts.Flavor]]] = field(default_factory=OrderedDict)
    images: OrderedDict[str, dict[str, list[facts.SiteImage]]] = field(default_factory=OrderedDict)


class FactCache:
    """Fleet-wide capacity, zones, flavors by name and images by name, for one inventory version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: _Entry | None = None
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        """Forget every fact (the next decision reads them again)."""
        with self._lock:
            self._entry = None

    def view(self, session: Session) -> CachedFacts:
        """The facts valid for the store as this session reads it now."""
        current = version(session)
        with self._lock:
            if self._entry is None or self._entry.version != current:
                self._entry = _Entry(version=current)
            return CachedFacts(self, self._entry, session)

    def _get(self, load: Callable[[], T], read: Callable[[], T | None], write: Callable[[T], None]) -> T:
        with self._lock:
            found = read()
            if found is not None:
                self.hits += 1
                return found
        value = load()  # outside the lock: another decision may load the same, harmlessly
        with self._lock:
            self.misses += 1
            write(value)
        return value


def _remember(table: OrderedDict[str, T], key: str, value: T) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_NAMES:
        table.popitem(last=False)


def _recall(table: OrderedDict[str, T], key: str) -> T | None:
    found = table.get(key)
    if found is not None:
        table.move_to_end(key)
    return found


@dataclass
class CachedFacts:
    """What one decision reads through the cache (every managed or unmanaged site of the fleet)."""

    cache: FactCache
    entry: _Entry
    session: Session

    def capacity(self) -> dict[str, dict[str, int]]:
        entry = self.entry

        def write(value: dict[str, dict[str, int]]) -> None:
            entry.capacity = value
        return self.cache._get(lambda: facts.capacity_by_site(self.session, _every_site()),
                               lambda: entry.capacity, write)

    def zones(self) -> dict[str, dict[str, bool]]:
        entry = self.entry

        def write(value: dict[str, dict[str, bool]]) -> None:
            entry.zones = value
        return self.cache._get(lambda: facts.zones_by_site(self.session, _every_site()), lambda: entry.zones, write)

    def flavors(self, name: str) -> dict[str, list[facts.Flavor]]:
        entry = self.entry
        return self.cache._get(lambda: facts.flavors(self.session, _every_site(), name=name),
                               lambda: _recall(entry.flavors, name),
                               lambda value: _remember(entry.flavors, name, value))

    def images(self, name: str) -> dict[str, list[facts.SiteImage]]:
        entry = self.entry
        return self.cache._get(lambda: facts.images(self.session, _every_site(), names=[name]),
                               lambda: _recall(entry.images, name),
                               lambda value: _remember(entry.images, name, value))


def _every_site() -> Any:
    return select(Site.id)


#: The process's cache, shared by every request and worker thread.
FACTS = FactCache()
