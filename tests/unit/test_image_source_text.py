"""How ``skyfleet image list`` / ``show`` print an image's source: an upload that has no bytes yet
says so, rather than ``site:None``."""

from __future__ import annotations

import pytest

from skyfleet.cli.images import _source_text


@pytest.mark.parametrize("source, text", [
    ({"site_name": "paris", "image_id": "9a1c"}, "paris:9a1c"),
    ({"url": "https://images.example/x.img"}, "https://images.example/x.img"),
    ({"site_name": "paris", "upload": True, "image_id": "f889"}, "paris:f889"),
    ({"site_name": "paris", "upload": True, "image_id": None}, "paris: upload, no bytes yet"),
])
def test_source_text(source: dict[str, object], text: str) -> None:
    assert _source_text({"source": source}) == text
