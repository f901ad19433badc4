"""Benchmark: the address view over N sites x M ports (default 100 x 1,000: 200,000 fixed IPs, plus floating IPs).

    .venv/bin/python bench/addresses.py [--sites 100] [--ports 1000] [--projects 20] [--queries 100]
                                        [--allocations 2000] [--workers 8] [--only-allocations]
                                        [--backend sqlite|postgresql|both | --db postgresql+psycopg://...]

Writes the inventory rows of every site straight into the database (ports with v4 and v6 fixed IPs,
subnets, servers, floating IPs; every project reuses 10.<p>.0.0/16 on every site, and one site in ten
also holds a copy of another site's floating IP), then measures: deriving every site's addresses (what
a full refresh adds), conflict detection with one routing domain per project over all its networks
(every site overlaps every other: the worst case), detection again with nothing changed, and p50/p99
through the HTTP API of searches (exact IP, CIDR, MAC, device), a deep page, the summary, the
conflict list and a CSV export; then threads allocating prefixes of mixed lengths from one shared
pool at once (overlaps counted, with ``ipaddress``). SQLite by default; ``--backend postgresql`` (or
``both``) runs on a throwaway database of the local PostgreSQL (``bench/benchdb.py``), ``--db`` on a
given URL. ``--only-allocations`` skips the address view and measures the pool alone. One process.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import itertools
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchdb import run_on  # bench/ is the script's own directory, first on sys.path
from fastapi.testclient import TestClient
from sqlalchemy import select

from skyfleet.api.app import create_app
from skyfleet.api.runtime import build_runtime
from skyfleet.config import Settings
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.addresses import build, conflicts, pools
from skyfleet.domains.addresses.models import AddressAllocation, RoutingDomain, RoutingDomainMember
from skyfleet.domains.addresses.service import Caller
from skyfleet.domains.inventory import service as inventory
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import Record
from skyfleet.errors import Conflict

PUBLIC_BASE = int(ipaddress.ip_address("198.18.0.0"))  # floating IPs: 198.18.0.0/15, one block per site


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


def fixed_ips(n: int, i: int, projects: int) -> tuple[str, str]:
    """Port ``i`` of site ``n``: its v4 address (the same on every site: tenants reuse their ranges) and v6."""
    p = i % projects
    return f"10.{p}.{(i // 250) % 256}.{i % 250 + 2}", f"fd00:{p:x}::{n:x}:{i:x}"


def mac_of(n: int, i: int, ports: int) -> str:
    """A MAC unique in the fleet (``n * ports + i`` in Neutron's fa:16:3e prefix) at up to 16M ports."""
    value = (n * ports + i) % (1 << 24)
    return f"fa:16:3e:{value >> 16:02x}:{(value >> 8) & 0xFF:02x}:{value & 0xFF:02x}"


def floating_ip(n: int, i: int, ports: int) -> str:
    """The floating IP of port ``i`` of site ``n`` (one per ten ports), unique in the fleet."""
    return str(ipaddress.ip_address(PUBLIC_BASE + 1 + n * ((ports + 9) // 10) + i // 10))


def site_records(n: int, ports: int, projects: int) -> dict[str, list[Record]]:
    records: dict[str, list[Record]] = {k: [] for k in ("networks", "subnets", "ports", "servers", "floating_ips")}
    for p in range(projects):
        project = f"project-{p:02d}"
        net, v4, v6 = f"net-{n}-{p}", f"sn4-{n}-{p}", f"sn6-{n}-{p}"
        records["networks"].append(Record(kind="networks", remote_id=net, project_id=project, name=net,
                                          status="ACTIVE", data={}))
        for sid, cidr in ((v4, f"10.{p}.0.0/16"), (v6, f"fd00:{p:x}::/64")):
            records["subnets"].append(Record(kind="subnets", remote_id=sid, project_id=project, name=sid, status=None,
                                             data={"cidr": cidr, "network_id": net,
                                                   "gateway_ip": str(ipaddress.ip_network(cidr)[1])}))
    for i in range(ports):
        p = i % projects
        project, vm = f"project-{p:02d}", f"vm-{n}-{i}"
        v4, v6 = fixed_ips(n, i, projects)
        mac = mac_of(n, i, ports)
        records["ports"].append(Record(
            kind="ports", remote_id=f"port-{n}-{i}", project_id=project, name="", status="ACTIVE", ips=(v4, v6),
            data={"mac_address": mac, "network_id": f"net-{n}-{p}", "device_id": vm, "device_owner": "compute:nova",
                  "fixed_ips": [{"ip_address": v4, "subnet_id": f"sn4-{n}-{p}"},
                                {"ip_address": v6, "subnet_id": f"sn6-{n}-{p}"}]}))
        records["servers"].append(Record(kind="servers", remote_id=vm, project_id=project, name=f"web-{n}-{i}",
                                         status="ACTIVE", data={}))
        if i % 10 == 0:
            address = floating_ip(n, i, ports)
            if n % 10 == 1 and i == 0:
                address = floating_ip(0, 0, ports)  # a copy of site 0's first floating IP: a duplicate public IP
            records["floating_ips"].append(Record(
                kind="floating_ips", remote_id=f"fip-{n}-{i}", project_id=project, name=address, status="ACTIVE",
                ips=(address,), data={"floating_ip_address": address, "port_id": f"port-{n}-{i}",
                                       "network_id": "public"}))
    return records


def timed(label: str, work: Callable[[], Any]) -> Any:
    """Run ``work``; print its wall time and this process's CPU time (SQLite's work included, not a
    PostgreSQL server's)."""
    started, started_cpu = time.perf_counter(), time.process_time()
    result = work()
    print(f"{label:<48} {time.perf_counter() - started:8.2f} s (CPU {time.process_time() - started_cpu:.2f} s)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--allocations", type=int, default=2000, help="pool allocations, 0 to skip")
    parser.add_argument("--workers", type=int, default=8, help="threads allocating at once")
    parser.add_argument("--only-allocations", action="store_true", help="measure the pool alone")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="",
                        help="throwaway database(s); default: SQLite, or --db")
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    if args.backend:
        run_on(args.backend, lambda label, url: run(args, url))
    else:
        run(args, args.db)


def run(args: argparse.Namespace, url: str) -> None:
    args = argparse.Namespace(**vars(args))  # a copy: the run below changes ``queries``
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs (shared host)")
    data_dir = Path(tempfile.mkdtemp(prefix="skyfleet-bench-addresses-"))
    runtime = build_runtime(Settings(data_dir=data_dir, database_url=url, auth_mode="noauth",
                                     noauth_allowed_hosts="testserver", audit_interval=3600))
    now = utcnow()
    site_ids = [f"site-{n:04d}" for n in range(args.sites)]
    with transaction(runtime.factory) as session:
        for site_id in site_ids:
            session.add(Site(id=site_id, name=site_id, auth_public={}, auth_encrypted="x", availability="online"))

    def write_inventory() -> None:
        for n, site_id in enumerate(site_ids):
            with transaction(runtime.factory) as session:
                for kind, rows in site_records(n, args.ports, args.projects).items():
                    inventory.apply_records(session, site=inventory.SiteRef(site_id, site_id), kind=kind,
                                            records=rows, now=now, complete=True, emit=False)
                inventory.record_refresh(session, site_id=site_id, now=now,
                                         outcome=inventory.SyncUpdate(full=True, calls=0))

    def derive() -> int:
        written = 0
        for site_id in site_ids:
            with transaction(runtime.factory) as session:
                written += build.refresh_site(session, site_id=site_id, now=now).written
        return written

    backend = 'PostgreSQL' if url.startswith('postgres') else 'SQLite'
    if args.only_allocations:
        print(f"{args.sites} sites, pool allocations only, {backend}")
        allocate_concurrently(runtime, site_ids, args.allocations, args.workers)
        runtime.close()
        return
    print(f"{args.sites} sites x {args.ports} ports ({args.projects} projects), {backend}")
    timed("inventory rows written (setup)", write_inventory)
    written = timed("addresses derived, every site", derive)
    print(f"{'':<48} {written:,} rows written")
    timed("addresses derived again, nothing changed", derive)
    with transaction(runtime.factory) as session:
        for p in range(args.projects):
            domain = RoutingDomain(name=f"vpn-{p}", description="", project_id=f"project-{p:02d}", created_at=now,
                                   updated_at=now)
            session.add(domain)
            session.flush()
            session.add(RoutingDomainMember(domain_id=domain.id, project_id=f"project-{p:02d}"))

    def detect() -> conflicts.DetectReport:
        with transaction(runtime.factory) as session:
            return conflicts.detect(session, now=utcnow())

    report = timed("conflict detection, first (events raised)", detect)
    print(f"{'':<48} {report.conflicts:,} conflicts, {report.raised:,} raised, "
          f"{report.domain_networks:,} domain networks")
    report = timed("conflict detection, nothing changed", detect)
    print(f"{'':<48} {report.raised} raised, {report.cleared} cleared")
    rng = random.Random(7)
    gc.collect()
    gc.freeze()  # what a started server does (skyfleet.cli.server): the long-lived heap leaves the collector's walks
    with TestClient(create_app(runtime, start_workers=False)) as client:
        def sample(params: Callable[[], dict[str, Any]], path: str = "/v1/addresses") -> str:
            """Wall time of each request, and this process's CPU time (on a shared host the wall time
            includes waiting for a core; the CPU time does not, nor the PostgreSQL server's work)."""
            times, cpu = [], []
            client.get(path, params=params())  # warm-up: the first request compiles the query
            for _ in range(args.queries):
                chosen = params()
                started, started_cpu = time.perf_counter(), time.process_time()
                response = client.get(path, params=chosen)
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
                assert response.status_code == 200, response.text
            cpu_p99 = sorted(cpu)[min(len(cpu) - 1, int(len(cpu) * 0.99))]
            return f"{percentiles(times)} (CPU p99 {cpu_p99 * 1000:.1f} ms)"

        def port() -> tuple[int, int]:  # an existing port: every sampled search finds rows
            return rng.randrange(args.sites), rng.randrange(args.ports)

        def cidr24() -> str:
            v4 = fixed_ips(0, rng.randrange(args.ports), args.projects)[0]
            return str(ipaddress.ip_network(f"{v4}/24", strict=False))

        print(f"{'search: exact IP (every site holds it)':<48} "
              f"{sample(lambda: {'ip': fixed_ips(*port(), args.projects)[0]})}")
        print(f"{'search: v6 exact IP':<48} {sample(lambda: {'ip': fixed_ips(*port(), args.projects)[1]})}")
        print(f"{'search: CIDR /24, first page of 100':<48} {sample(lambda: {'cidr': cidr24()})}")
        print(f"{'search: MAC (any case)':<48} {sample(lambda: {'mac': mac_of(*port(), args.ports).upper()})}")
        print(f"{'search: device name':<48} {sample(lambda: {'device': 'web-{}-{}'.format(*port())})}")
        print(f"{'search: site, first page of 100':<48} "
              f"{sample(lambda: {'site': site_ids[rng.randrange(args.sites)]})}")
        print(f"{'search: site + CIDR /24, first page of 100':<48} "
              f"{sample(lambda: {'site': site_ids[rng.randrange(args.sites)], 'cidr': cidr24()})}")
        print(f"{'page 50 of 100 rows (offset 5,000)':<48} {sample(lambda: {'offset': 5000, 'limit': 100})}")
        few = max(1, args.queries // 10)
        args.queries = few
        print(f"{'summary, whole fleet, 3 s cache (' + str(few) + ' runs)':<48} "
              f"{sample(dict, '/v1/addresses/summary')}")
        print(f"{'conflict list, first page (' + str(few) + ' runs)':<48} "
              f"{sample(dict, '/v1/addresses/conflicts')}")
        print(f"{'CSV export, CIDR 10.0.0.0/16 (' + str(few) + ' runs)':<48} "
              f"{sample(lambda: {'cidr': '10.0.0.0/16', 'format': 'csv'})}")
    if args.allocations:
        allocate_concurrently(runtime, site_ids, args.allocations, args.workers)
    runtime.close()


def allocate_concurrently(runtime: Any, site_ids: list[str], total: int, workers: int) -> None:
    """``total`` allocations of mixed lengths (/24, /23, /26) from one shared pool by ``workers`` threads."""
    caller = Caller(None)
    with transaction(runtime.factory) as session:
        pool_id = pools.create_pool(session, name="bench", description="", cidr="10.0.0.0/8", project=None,
                                    shared=True, caller=caller, now=utcnow()).id
    per_worker, refused = total // workers, []
    latencies: list[float] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(per_worker):
            started = time.perf_counter()
            try:
                with transaction(runtime.factory) as session:
                    pools.allocate(session, pool_id=pool_id, site_id=site_ids[(n + i) % len(site_ids)],
                                   prefix_length=(24, 23, 26)[(n + i) % 3], caller=caller, now=utcnow())
            except Conflict as exc:
                refused.append(exc.detail)
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with transaction(runtime.factory) as session:
        cidrs = list(session.scalars(select(AddressAllocation.cidr).where(AddressAllocation.pool_id == pool_id)))
    networks = sorted((ipaddress.ip_network(c) for c in cidrs), key=lambda n: int(n.network_address))
    overlaps = sum(a.broadcast_address >= b.network_address for a, b in itertools.pairwise(networks))
    print(f"{f'pool: {len(cidrs):,} allocations, {workers} threads':<48} {elapsed:8.2f} s "
          f"({len(cidrs) / elapsed:,.0f}/s, {percentiles(latencies)}), {overlaps} overlaps, "
          f"{len(refused)} refused")


if __name__ == "__main__":
    main()
