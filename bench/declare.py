"""Benchmark: the declaration itself, in-process: one keypair declared on N sites, as POST /v1/keypairs does it.

    .venv/bin/python bench/declare.py [--sites 1000,10000] [--db sqlite|postgresql|both] [--runs 3]
                                      [--busy-threads N]

No site is called and no worker runs: the clock covers what the request does before it answers 202
(check the placement, record the resource, converge it: the operation, one task and one binding per
site, commit, then the 202 body: every binding rendered and serialised). Two placements: every
managed site (``{}``) and the same sites named one by one (``placement.sites``). The sites are
registered first with plain inserts (setup, not measured). PostgreSQL: a throwaway database on
127.0.0.1:5432 (see benchdb.py). Each figure is the median of --runs declarations (the first one
warms the statement caches and is not counted); the load average is printed: the host may be shared.
``--busy-threads N`` runs N threads of Python work in the same process meanwhile (each: about 1 ms of
work, 1 ms asleep, over and over), as the health audit's and the workers' threads do in a live server:
the request then has to win the GIL back each time it lets it go (SQLite's driver lets it go at each
row it steps).
Numbers are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).parent))
from benchdb import run_on

from skyfleet.db import migrate
from skyfleet.db.base import new_id, utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync import converge as conv
from skyfleet.domains.sync import service
from skyfleet.domains.sync.schemas import ResourceCreate
from skyfleet.secrets import SecretBox

PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFb8Xh0Ud6oGTc6a7h8bXr0S7kUd3DLBHvH8cS8nq0yq "
              "skyfleet-bench")
CALLER = service.Caller(user_id="noauth", user_name="noauth", project_id=None, project_name=None, is_admin=True,
                        real_user=False)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def register(factory: Any, first: int, count: int) -> list[str]:
    """Sites ``first`` to ``count - 1``, managed and online, written in one executemany; their names."""
    box = SecretBox([Fernet.generate_key().decode()])
    auth = {"auth_url": "http://127.0.0.1:1/identity/v3", "username": "admin", "password": "pw",
            "project_name": "admin", "user_domain_name": "Default", "project_domain_name": "Default"}
    public = {k: v for k, v in auth.items() if k != "password"}
    sealed, now = box.encrypt(auth), utcnow()
    names = [f"site-{i:05d}" for i in range(first, count)]
    with transaction(factory) as session:
        session.execute(insert(Site), [
            {"id": new_id(), "name": name, "description": "", "managed": True, "auth_public": public,
             "auth_encrypted": sealed, "availability": "online", "consecutive_failures": 0, "capabilities": {},
             "created_at": now, "updated_at": now} for name in names])
    return names


def declare(factory: Any, name: str, placement: dict[str, Any]) -> tuple[float, float, int]:
    """Seconds to the commit, seconds to the serialised 202 body, and the bindings in it."""
    started = time.perf_counter()
    body = ResourceCreate.model_validate({"spec": {"name": name, "public_key": PUBLIC_KEY}, "placement": placement})
    now = utcnow()
    with transaction(factory) as session:
        service.validate_placement(session, body.placement)
        resource = service.create(session, kind="keypair", data=body, spec=dict(body.spec), caller=CALLER, now=now)
        conv.converge(session, resource, now=now, user_id=CALLER.user_id)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    committed = time.perf_counter() - started
    out.model_dump_json()
    return committed, time.perf_counter() - started, len(out.bindings)


def busy(stop: threading.Event) -> None:
    """About 1 ms of Python work, then 1 ms asleep, until ``stop``."""
    while not stop.is_set():
        deadline = time.perf_counter() + 0.001
        while time.perf_counter() < deadline:
            sum(range(200))
        time.sleep(0.001)


def run(label: str, url: str, counts: list[int], runs: int) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    registered: list[str] = []
    for count in counts:
        registered += register(factory, len(registered), count)
        everywhere: dict[str, Any] = {}
        named: dict[str, Any] = {"sites": registered[:count]}
        for form, (placement, shown) in enumerate(((everywhere, "placement {}"), (named, f"{count} sites named"))):
            declare(factory, f"warm-{count}-{form}", placement)
            commits, answers = [], []
            for attempt in range(runs):
                commit, answer, bindings = declare(factory, f"kp-{count}-{form}-{attempt}", placement)
                commits.append(commit)
                answers.append(answer)
            print(f"{label:<10} {count:>6} sites  {shown:<19} committed {statistics.median(commits) * 1000:>7.0f} ms"
                  f"  with the 202 body {statistics.median(answers) * 1000:>7.0f} ms  ({bindings} bindings;"
                  f" median of {runs})", flush=True)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", default="1000,10000", help="comma-separated site counts, ascending")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy-threads", type=int, default=0, help="threads of Python work meanwhile")
    args = parser.parse_args()
    counts = sorted(int(n) for n in args.sites.split(","))
    print(f"{load()} at the start; {args.busy_threads} busy threads", flush=True)
    stop = threading.Event()
    threads = [threading.Thread(target=busy, args=(stop,), daemon=True) for _ in range(args.busy_threads)]
    for thread in threads:
        thread.start()
    try:
        run_on(args.db, lambda label, url: run(label, url, counts, args.runs))
    finally:
        stop.set()
    print(f"{load()} at the end", flush=True)


if __name__ == "__main__":
    main()
