"""The shared check of names and free text (skyfleet.domains.text)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from skyfleet.domains.text import Name, Text, forbidden_character


class Sample(BaseModel):
    name: Name
    text: Text = ""


@pytest.mark.parametrize("value", ["paris-1", "Zürich edge", "東京", "a.b_c@d", "emoji 🚀"])
def test_printable_names_pass(value: str) -> None:
    assert Sample(name=value).name == value


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b", "\u202a", "\u202e", "\u2066",
                                  "\u2069", "\u200e", "\u061c", "\u2028", "\u200b", "\ud800", "\n", "\t"])
def test_control_bidi_and_format_characters_are_refused_in_names(char: str) -> None:
    with pytest.raises(ValidationError) as info:
        Sample(name=f"ab{char}cd")
    assert "U+" in str(info.value) and "position 2" in str(info.value)


def test_text_allows_line_breaks_but_not_other_controls() -> None:
    assert Sample(name="n", text="line one\nline two\r\n\tindented").text.startswith("line one")
    with pytest.raises(ValidationError):
        Sample(name="n", text="bell\x07")
    with pytest.raises(ValidationError):
        Sample(name="n", text="flip\u202etext")
    assert forbidden_character("ok") is None
