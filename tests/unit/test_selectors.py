"""Label selector parsing and matching."""

import pytest

from skyfleet.domains.selectors import Requirement, matches, parse_selector
from skyfleet.errors import Invalid


def test_parse_all_operators() -> None:
    assert parse_selector("tier=edge, country!=fr,gpu,!legacy,a==b") == [
        Requirement("tier", "=", "edge"), Requirement("country", "!=", "fr"), Requirement("gpu", "exists"),
        Requirement("legacy", "!exists"), Requirement("a", "=", "b"),
    ]


@pytest.mark.parametrize("bad", ["=edge", "tier=a b", "ti er=x", "tier!=a=b", "!"])
def test_bad_terms_are_rejected_with_the_term(bad: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_selector(bad)
    assert "selector" in info.value.detail


def test_matches_uses_kubernetes_semantics_for_not_equal() -> None:
    reqs = parse_selector("tier=edge,country!=fr")
    assert matches(reqs, {"tier": "edge", "country": "de"})
    assert matches(reqs, {"tier": "edge"})  # missing key satisfies !=
    assert not matches(reqs, {"tier": "edge", "country": "fr"})
    assert not matches(reqs, {"tier": "core"})


def test_selectors_are_capped_in_terms_and_length() -> None:
    assert len(parse_selector(",".join(f"k{i}" for i in range(64)))) == 64
    with pytest.raises(Invalid) as info:
        parse_selector(",".join(f"k{i}" for i in range(65)))
    assert "at most 64" in info.value.detail
    with pytest.raises(Invalid) as info:
        parse_selector("k=" + "v" * 4095)
    assert "4096" in info.value.detail


@pytest.mark.parametrize("bad", ["tier=ed\x00ge", "ti\u202eer", "!gpu\x1b"])
def test_control_and_bidi_characters_are_rejected(bad: str) -> None:
    with pytest.raises(Invalid):
        parse_selector(bad)
