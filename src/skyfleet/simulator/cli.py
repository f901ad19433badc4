"""`skyfleet-sim`: serve N simulated OpenStack sites and write a clouds.yaml for them.

Why it exists: anyone can try Skyfleet (or openstack CLI tools) without a cloud, and other
processes -- benchmarks, a dashboard demo -- can run against a long-lived simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from . import new_event_loop
from .clouds import write_clouds_yaml
from .server import Listener
from .state import Fleet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="skyfleet-sim", description="Serve simulated OpenStack sites.")
    parser.add_argument("--sites", type=int, default=3, help="number of sites (default 3)")
    parser.add_argument("--port", type=int, default=8780, help="TCP port (default 8780; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--clouds-yaml", default="", help="write a clouds.yaml with one cloud per site here")
    parser.add_argument("--regions-per-keystone", type=int, default=1,
                        help="K consecutive sites share one keystone as RegionOne..K (default 1: share nothing)")
    parser.add_argument("--boot-delay", type=float, default=0.0, help="seconds a server stays in BUILD")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    parser.add_argument("--name-prefix", default="site-", help="site names are PREFIX0001.. (default site-)")
    parser.add_argument("--digest-only-images", action="store_true",
                        help="glance keeps an upload's size and hashes, not its bytes (big image copies, little RAM)")
    args = parser.parse_args(argv)
    if args.sites < 0 or args.regions_per_keystone < 1:
        parser.error("--sites must be >= 0 and --regions-per-keystone >= 1")
    return args


async def serve(args: argparse.Namespace) -> None:
    fleet = Fleet(regions_per_keystone=args.regions_per_keystone, boot_delay=args.boot_delay,
                  latency_ms=args.latency_ms, name_prefix=args.name_prefix,
                  digest_only_images=args.digest_only_images)
    fleet.populate(args.sites)
    listener = Listener(fleet)
    base = await listener.start(args.host, args.port)
    if args.clouds_yaml:
        write_clouds_yaml(fleet, args.clouds_yaml)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    first = next(iter(fleet.sites), None)
    print(f"skyfleet-sim: {len(fleet.sites)} sites listening on {base}", flush=True)
    if first:
        print(f"skyfleet-sim: e.g. {first}: auth_url {base}/{first}/identity (user admin, project admin)", flush=True)
    print(f"skyfleet-sim: admin endpoint {base}/_sim/sites", flush=True)
    if args.clouds_yaml:
        print(f"skyfleet-sim: wrote {args.clouds_yaml}", flush=True)
    await stop.wait()
    print("skyfleet-sim: stopping", flush=True)
    await listener.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loop = new_event_loop()
    try:
        loop.run_until_complete(serve(args))
    except OSError as exc:
        print(f"skyfleet-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
