"""Which auth URLs a site may have (``site_url_allow`` / ``site_url_deny``).

Registering a site makes Skyfleet send the site's password to its ``auth_url`` and show what came
back in ``last_error``: whoever may register sites could otherwise aim Skyfleet at addresses only it
can reach (cloud metadata at 169.254.169.254, internal services). A rule is a CIDR (``10.0.0.0/8``,
an address) or a host pattern in fnmatch style (``*.example.net``). A name is matched against the
patterns, and resolved (every address) for the CIDR rules; a literal IP is matched as it is. Deny wins;
a non-empty allow list admits only what one of its rules matches.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from skyfleet.config import Settings
from skyfleet.errors import Invalid

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Rule:
    text: str
    network: Network | None  # None: a host pattern

    def matches(self, host: str, addresses: list[Address], *, every: bool) -> bool:
        """Pattern: the host name matches. CIDR: any address (deny) or every address (allow) is inside."""
        if self.network is None:
            return fnmatchcase(host.lower(), self.text.lower())
        inside = [address in self.network for address in addresses]
        return bool(inside) and (all(inside) if every else any(inside))


def parse_rules(text: str) -> list[Rule]:
    rules = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            rules.append(Rule(item, ipaddress.ip_network(item, strict=False)))
        except ValueError:
            rules.append(Rule(item, None))
    return rules


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def resolve(host: str) -> list[Address]:
    """Every address ``host`` resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({_plain(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])) for info in infos}, key=str)


def addresses_of(host: str) -> list[Address]:
    try:
        return [_plain(ipaddress.ip_address(host))]
    except ValueError:
        return resolve(host)


def check_site_url(url: str, settings: Settings) -> None:
    """Raise :class:`Invalid` (400) naming the rule when ``url`` is outside the site URL policy."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    if not host:
        raise Invalid("auth_url has no host")
    deny, allow = parse_rules(settings.site_url_deny), parse_rules(settings.site_url_allow)
    needs_addresses = any(rule.network is not None for rule in deny + allow)
    addresses = addresses_of(host) if needs_addresses else []
    for rule in deny:
        if rule.matches(host, addresses, every=False):
            shown = ", ".join(map(str, addresses)) or host
            raise Invalid(f"auth_url host {host} ({shown}) is refused by the site URL policy: deny rule "
                          f"{rule.text!r} (SKYFLEET_SITE_URL_DENY)")
    if allow and not any(rule.matches(host, addresses, every=True) for rule in allow):
        shown = ", ".join(map(str, addresses)) or "not resolved"
        raise Invalid(f"auth_url host {host} ({shown}) is refused by the site URL policy: no allow rule "
                      f"matches (SKYFLEET_SITE_URL_ALLOW={settings.site_url_allow})")
