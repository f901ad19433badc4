"""Benchmark: one keypair declared through a live `skyfleet serve`, timed from the sites' side.

    .venv/bin/python bench/live_sync.py [--sites 1000] [--latency-ms 50] [--sequential-sites 50]
                                        [--timeout 120] [--audit-sites M] [--during-audit]
                                        [--postgres [--workers 2]]

The other benchmarks time the fan-out in a quiet process. Here the simulator (`skyfleet-sim`) and the
real server (`skyfleet serve --noauth` on loopback, embedded: SQLite in a temporary directory, in-process
workers) each run in their own process, and the server's periodic jobs run at their default intervals
(every ``SKYFLEET_*`` variable is dropped from the server's environment and it starts in an empty
directory, so no ``.env`` applies): the health audit, the inventory refresh, the quota rounds and the
drift audit all work while the change runs. ``--postgres`` runs the scale-out deployment instead: a
fresh database on the local PostgreSQL (127.0.0.1:5432, dropped at the end), ``skyfleet serve --noauth
--no-workers`` for the API and ``--workers`` ``skyfleet worker`` processes woken through the local
RabbitMQ (5672), which run the tasks and claim the periodic jobs between them; CPU and RSS are then
summed over all those processes.

Setup (not measured): the sites are registered through ``POST /v1/sites?probe=false``; the script then
waits until the server's own health audit has found every site online (``skyfleet_sites`` on
``/metrics``), which takes up to one audit interval (60 s by default) plus the audit itself.
``--audit-sites M`` registers M sites (M > --sites) and places the keypair on --sites of them only
(label selector), so the periodic work covers more sites than the change. ``--during-audit`` starts
the change only once the next health audit has recorded its first sites (``last_audit_at`` moves), so
the change and an audit overlap.

Measured: one ``POST /v1/keypairs`` (noauth: the caller is a fleet admin, and each copy belongs to the
site credential's user, as ``owner: "site"`` would make it); the clock starts before the request, and
``GET /_sim/resources`` on the simulator (the sites' own state, not Skyfleet's view) is polled every 100
ms, from the moment the request is sent (while it is outstanding too), for the times to the first site
(the declaration was committed before it), 50 %, 99 % and 100 % of the sites. Over that window: the
server's CPU seconds (psutil) divided by the requests the simulator answered (every site call of the
server in the window, the periodic jobs' included), the server's RSS, and the calls one changed site
(and, with --audit-sites, one site outside the change) received in that window. Then a sequential
openstacksdk loop (connect, look the keypair up, create it) over --sequential-sites sites of the same
simulator, extrapolated to --sites.
The load average is printed at the start and the end: the host may be shared.

Numbers are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from fanout import free_port, start_simulator
from sync import PUBLIC_KEY, sequential

from skyfleet.cli.cloudsyaml import site_body
from skyfleet.config import Settings

KEYPAIR = "live-bench"
ONLINE = re.compile(r'^skyfleet_sites\{availability="online"\} ([0-9.e+]+)$', re.MULTILINE)


def defaults() -> str:
    """The periodic intervals the server runs with (the settings' defaults: nothing overrides them)."""
    d = {name: field.default for name, field in Settings.model_fields.items()}
    converge = d["sync_converge_interval"] or 5 * d["sync_audit_interval"]
    return (f"health audit every {d['audit_interval']:.0f} s, inventory refresh {d['inventory_interval']:.0f} s "
            f"(full {d['inventory_full_interval']:.0f} s), quota round {d['quota_interval']:.0f} s, drift audit "
            f"{d['sync_audit_interval']:.0f} s (converge pass {converge:.0f} s); "
            f"engine {d['engine_concurrency']} tasks at once")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def log_levels(path: Path) -> str:
    """How many WARNING and ERROR lines the server logged: a run whose server complained is suspect."""
    text = path.read_text(errors="replace") if path.exists() else ""
    first = next((line for line in text.splitlines() if "ERROR" in line or "WARNING" in line), "")
    return (f"{len(re.findall(r'WARNING', text))} warning and {len(re.findall(r'ERROR', text))} error lines"
            + (f"; the first: {first[:300]}" if first else ""))


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def server_env(workdir: Path, database: str | None) -> dict[str, str]:
    """The environment of every Skyfleet process: no SKYFLEET_* of the caller's, only what the deployment needs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYFLEET_")}
    env["SKYFLEET_DATA_DIR"] = str(workdir / "server")
    env["SKYFLEET_LOG_FORMAT"] = "text"
    if database:
        env["SKYFLEET_DATABASE_URL"] = database
        env["SKYFLEET_BROKER_URL"] = BROKER
    return env


def create_database() -> str:
    """A fresh database on the local PostgreSQL for this run; its SQLAlchemy URL."""
    import psycopg

    name = f"skyfleet_live_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_workers(workdir: Path, database: str, count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` `skyfleet worker` processes (tasks and periodic jobs) on ``database``, logging to workdir."""
    procs = []
    for index in range(count):
        with (workdir / f"worker-{index}.log").open("wb") as out:
            procs.append(subprocess.Popen([str(Path(sys.executable).parent / "skyfleet"), "worker"],
                                          env=server_env(workdir, database), cwd=workdir, stdout=out,
                                          stderr=subprocess.STDOUT))
    return procs


def start_server(workdir: Path, database: str | None = None) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`skyfleet serve --noauth` on a free loopback port, every setting at its default: SQLite in ``workdir``
    with in-process workers, or, with ``database``, API only (``--no-workers``) on that database; returns
    the process, its base URL and its log file once /healthz answers."""
    port = free_port()
    log = workdir / "server.log"
    command = [str(Path(sys.executable).parent / "skyfleet"), "serve", "--noauth", "--host", "127.0.0.1",
               "--port", str(port)] + (["--no-workers"] if database else [])
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=server_env(workdir, database), cwd=workdir, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"skyfleet serve exited with code {proc.returncode}; its log ends:\n{log_tail(log)}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url, log
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"skyfleet serve did not answer /healthz within 60 s; its log ends:\n{log_tail(log)}")
        time.sleep(0.2)


def register(api: httpx.Client, clouds: dict[str, Any], changed: int) -> None:
    """Every cloud as a site through the API, without probing; the first ``changed`` get bench=change."""
    names = list(clouds)

    def one(index: int) -> None:
        name = names[index]
        body = site_body(name, clouds[name], labels={"bench": "change" if index < changed else "audit"}, group=None)
        answer = api.post("/v1/sites", params={"probe": "false"}, json=body)
        if answer.status_code != 201:
            raise RuntimeError(f"registering {name}: {answer.status_code} {answer.text[:300]}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(len(names))))


def online(api: httpx.Client) -> int:
    found = ONLINE.search(api.get("/metrics").text)
    return int(float(found.group(1))) if found else 0


def wait_online(api: httpx.Client, server: subprocess.Popen[bytes], count: int, timeout: float) -> float:
    started = time.monotonic()
    while (seen := online(api)) < count:
        if server.poll() is not None:
            raise RuntimeError(f"skyfleet serve exited with code {server.returncode}")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"only {seen}/{count} sites online after {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def last_audit(api: httpx.Client) -> str:
    """The newest last_audit_at among the first 100 sites: it moves once the health audit records a batch."""
    return max((site["last_audit_at"] or "" for site in api.get("/v1/sites", params={"limit": 100}).json()["sites"]),
               default="")


def wait_next_audit(api: httpx.Client, timeout: float) -> float:
    """Wait until the next health audit has recorded its first sites; returns the seconds waited."""
    started, seen = time.monotonic(), last_audit(api)
    while last_audit(api) == seen:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"no health audit recorded a site within {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def sim_requests(sim: httpx.Client) -> int:
    """Requests the simulator has answered so far, all sites together."""
    return sum(site["requests"] for site in sim.get("/_sim/sites").json()["sites"])


def site_calls(sim: httpx.Client, name: str) -> Counter[str]:
    """One site's request counters, as "METHOD /path" -> count."""
    rows = sim.get(f"/_sim/sites/{name}/counters").json()["counters"]
    return Counter({f"{row['method']} {row['path']}": int(row["count"]) for row in rows})


def holding(sim: httpx.Client, name: str) -> int:
    return int(sim.get("/_sim/resources", params={"kind": "keypairs", "name": name}).json()["holding"])


def cpu_seconds(procs: list[psutil.Process]) -> float:
    return float(sum(times.user + times.system for times in (proc.cpu_times() for proc in procs)))


def peak_rss(pid: int) -> int | None:
    """VmHWM (Linux): the most resident memory the process ever had, in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def change(api: httpx.Client, sim: httpx.Client, server: list[psutil.Process], count: int, placement: dict[str, Any],
           timeout: float, sampled: list[str]) -> float | None:
    """Declare the keypair, poll the sites until all ``count`` hold it; prints the figures, returns the seconds
    to 100 % (None on timeout). The calls ``sampled`` sites received in the window are printed one by one."""
    before = {name: site_calls(sim, name) for name in sampled}
    calls0, cpu0 = sim_requests(sim), cpu_seconds(server)
    started = time.monotonic()
    accepted = 0.0

    def post() -> httpx.Response:
        nonlocal accepted
        answer = api.post("/v1/keypairs", json={"spec": {"name": KEYPAIR, "public_key": PUBLIC_KEY},
                                                "placement": placement})
        accepted = time.monotonic() - started
        return answer

    marks: dict[int, float] = {}
    held = 0
    with ThreadPoolExecutor(1) as one:  # the sites are polled while the request is outstanding too
        request = one.submit(post)
        while (elapsed := time.monotonic() - started) < timeout:
            if request.done() and request.result().status_code != 202:
                answer = request.result()
                raise RuntimeError(f"POST /v1/keypairs: {answer.status_code} {answer.text[:300]}")
            held = holding(sim, KEYPAIR)
            if held and 0 not in marks:
                marks[0] = elapsed  # the first site holds it: the declaration was committed before this
            for pct in (50, 99, 100):
                if pct not in marks and held * 100 >= pct * count:
                    marks[pct] = elapsed
            if held >= count and request.done():
                break
            time.sleep(0.1)
        request.result()
    cpu, calls = cpu_seconds(server) - cpu0, sim_requests(sim) - calls0
    windows = {name: site_calls(sim, name) - before[name] for name in sampled}
    done = marks.get(100)
    shown = "  ".join(f"{pct}% {marks[pct]:6.2f} s" if pct in marks else f"{pct}% -" for pct in (50, 99, 100))
    shown = (f"first site {marks[0]:6.2f} s  " if 0 in marks else "") + shown
    print(f"POST /v1/keypairs answered 202 in {accepted * 1000:.0f} ms", flush=True)
    print(f"sites holding the keypair (simulator's view): {shown}"
          + ("" if done else f"  (timeout: {held}/{count} after {timeout:.0f} s)"), flush=True)
    view = api.get(f"/v1/keypairs/{KEYPAIR}").json().get("counts")
    print(f"Skyfleet's view at that moment: {view}", flush=True)
    rss = sum(proc.memory_info().rss for proc in server)
    peak = sum(peak_rss(proc.pid) or 0 for proc in server)
    print(f"server CPU {cpu:.2f} s over {calls} site calls in the window ({calls / count:.1f} per changed site): "
          f"{cpu / max(calls, 1) * 1000:.3f} ms CPU per site call; RSS {rss / 2**20:.0f} MB"
          + (f" (peak {peak / 2**20:.0f} MB)" if peak else ""), flush=True)
    for name, window in windows.items():
        listed = ", ".join(f"{call} x{n}" for call, n in sorted(window.items())) or "none"
        print(f"calls {name} received in the window: {listed}", flush=True)
    return done


def background(sim: httpx.Client, seconds: float = 2.0) -> float:
    """Site calls per second the server makes on its own (periodic jobs) just before the change."""
    before, started = sim_requests(sim), time.monotonic()
    time.sleep(seconds)
    return (sim_requests(sim) - before) / (time.monotonic() - started)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def run(args: argparse.Namespace, workdir: Path) -> None:
    total = max(args.sites, args.audit_sites or 0)
    print(f"{load()} at the start", flush=True)
    sim_proc: subprocess.Popen[bytes] | None = None
    server: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = []
    database = create_database() if args.postgres else None
    try:
        sim_proc, clouds = start_simulator(total, args.latency_ms, workdir)
        auth_url = urlsplit(next(iter(clouds.values()))["auth"]["auth_url"])
        sim = httpx.Client(base_url=f"{auth_url.scheme}://{auth_url.netloc}", timeout=30)
        server, url, log = start_server(workdir, database)
        if database:
            workers = start_workers(workdir, database, args.workers)
        api = httpx.Client(base_url=url, timeout=60)
        deployment = (f"skyfleet serve --noauth --no-workers (PostgreSQL) in process {server.pid} and "
                      f"{len(workers)} skyfleet worker processes ({', '.join(str(w.pid) for w in workers)}; RabbitMQ)"
                      if database else f"skyfleet serve --noauth (SQLite) in process {server.pid}")
        print(f"{total} simulated sites ({args.latency_ms:.0f} ms latency per request) in process {sim_proc.pid}; "
              f"{deployment}: {defaults()}", flush=True)
        started = time.monotonic()
        register(api, clouds, args.sites)
        print(f"registered {total} sites through POST /v1/sites?probe=false in {time.monotonic() - started:.1f} s",
              flush=True)
        waited = wait_online(api, server, total, timeout=args.setup_timeout)
        print(f"health audit: {total}/{total} sites online {waited:.1f} s later", flush=True)
        if args.during_audit:
            waited = wait_next_audit(api, timeout=args.setup_timeout)
            print(f"the next health audit recorded its first sites {waited:.1f} s later: the change starts now",
                  flush=True)
        print(f"background: {background(sim):.0f} site calls/s from the periodic jobs just before the change",
              flush=True)
        placement: dict[str, Any] = {"selector": "bench=change"} if total > args.sites else {}
        label = f"{args.sites} of {total} sites" if total > args.sites else f"every site ({total})"
        print(f"change: one keypair on {label}", flush=True)
        names = list(clouds)
        sampled = [names[0]] + ([names[-1]] if total > args.sites else [])  # a changed site, an audited-only one
        procs = [psutil.Process(p.pid) for p in (server, *workers)]
        engine = change(api, sim, procs, args.sites, placement, args.timeout, sampled)
        if args.sequential_sites > 0:
            naive = sequential(clouds, min(args.sequential_sites, total))
            per_site = naive / min(args.sequential_sites, total)
            extrapolated = per_site * args.sites
            ratio = f"{extrapolated / engine:.0f}x" if engine else "n/a (the change timed out)"
            print(f"sequential loop: {per_site * 1000:.0f} ms per site, {extrapolated:.0f} s for {args.sites} sites "
                  f"extrapolated; live server vs sequential loop (100 %): {ratio}", flush=True)
        print(f"server log: {log_levels(log)}", flush=True)
        for index in range(len(workers)):
            print(f"worker {index} log: {log_levels(workdir / f'worker-{index}.log')}", flush=True)
        print(f"{load()} at the end", flush=True)
    finally:
        for proc in [server, *workers]:
            stop(proc)
        stop(sim_proc)
        if database:
            drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sites", type=int, default=1000, help="sites the keypair goes to")
    parser.add_argument("--latency-ms", type=float, default=50, help="latency the simulator adds to every request")
    parser.add_argument("--sequential-sites", type=int, default=50, help="sites of the sequential loop (0: none)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds the change may take")
    parser.add_argument("--audit-sites", type=int, default=0,
                        help="register this many sites (more than --sites): the periodic jobs cover them all")
    parser.add_argument("--during-audit", action="store_true",
                        help="start the change once the next health audit is under way (up to one interval later)")
    parser.add_argument("--postgres", action="store_true",
                        help="PostgreSQL + RabbitMQ + --workers skyfleet worker processes, not the embedded default")
    parser.add_argument("--workers", type=int, default=2, help="--postgres: skyfleet worker processes")
    parser.add_argument("--setup-timeout", type=float, default=0,
                        help="seconds to wait for the health audit to find every site online "
                             "(default: 90 s plus 50 ms per site)")
    parser.add_argument("--logs", type=Path, help="copy the server's and workers' logs into this directory")
    args = parser.parse_args()
    if args.sites < 1 or (args.audit_sites and args.audit_sites < args.sites):
        parser.error("--sites must be >= 1 and --audit-sites, when given, >= --sites")
    total = max(args.sites, args.audit_sites)
    args.setup_timeout = args.setup_timeout or 90 + 0.05 * total
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run(args, Path(tmp))
        except RuntimeError as exc:
            sys.exit(f"live_sync: {exc}")
        finally:
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("*.log"):
                    shutil.copy(log, args.logs / log.name)


if __name__ == "__main__":
    main()
