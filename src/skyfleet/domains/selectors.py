"""Label selectors: ``tier=edge,country=fr``, ``tier!=core``, ``gpu`` (has the key), ``!gpu``.

Kubernetes-style semantics: ``k!=v`` also matches sites that do not have ``k``. Each term becomes
one SQL sub-query, so a selector is capped (``MAX_TERMS`` terms, ``MAX_LENGTH`` characters): beyond
that, SQLite refuses the expression tree and PostgreSQL plans for seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from skyfleet.domains.text import forbidden_character
from skyfleet.errors import Invalid

Op = Literal["=", "!=", "exists", "!exists"]
MAX_TERMS = 64
MAX_LENGTH = 4096


@dataclass(frozen=True)
class Requirement:
    key: str
    op: Op
    value: str | None = None


def parse_selector(text: str) -> list[Requirement]:
    """Parse a selector; raises :class:`Invalid` with the offending term or the limit passed."""
    if len(text) > MAX_LENGTH:
        raise Invalid(f"label selector too long: at most {MAX_LENGTH} characters, got {len(text)}")
    terms = text.split(",")
    if len(terms) > MAX_TERMS:
        raise Invalid(f"label selector has {len(terms)} terms; at most {MAX_TERMS}")
    requirements: list[Requirement] = []
    for raw in terms:
        term = raw.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            requirements.append(Requirement(_key(key, term), "!=", _value(value, term)))
        elif "=" in term:
            key, value = (part.strip() for part in term.split("=", 1))
            value = value.removeprefix("=").strip()  # accept k==v
            requirements.append(Requirement(_key(key, term), "=", _value(value, term)))
        elif term.startswith("!"):
            requirements.append(Requirement(_key(term[1:].strip(), term), "!exists"))
        else:
            requirements.append(Requirement(_key(term, term), "exists"))
    return requirements


def _key(key: str, term: str) -> str:
    if not key or any(c in key for c in " !=") or len(key) > 63 or forbidden_character(key):
        raise Invalid(f"bad label selector term {term!r}: invalid key")
    return key


def _value(value: str, term: str) -> str:
    if any(c in value for c in " !=,") or len(value) > 63 or forbidden_character(value):
        raise Invalid(f"bad label selector term {term!r}: invalid value")
    return value


def matches(requirements: list[Requirement], labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy every requirement (used outside SQL)."""
    for req in requirements:
        present = req.key in labels
        if req.op == "=" and labels.get(req.key) != req.value:
            return False
        if req.op == "!=" and labels.get(req.key) == req.value:
            return False
        if req.op == "exists" and not present:
            return False
        if req.op == "!exists" and present:
            return False
    return True
