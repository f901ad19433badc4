"""A Glance image deleted by someone else at the same moment is "already gone", not a failed task."""

from __future__ import annotations

from typing import Any

import pytest

from skyfleet.drivers.openstack import imageapi
from skyfleet.errors import PermanentSiteError


def racing(monkeypatch: pytest.MonkeyPatch, left: dict[str, Any] | None) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise PermanentSiteError("HTTP 400: Image status transition from deleted to deleted is not allowed",
                                 status=400)

    monkeypatch.setattr(imageapi, "_call", refuse)
    monkeypatch.setattr(imageapi, "get_image", lambda _conn, _image_id: left)


@pytest.mark.parametrize("left", [None, {"id": "i", "status": "deleted"}, {"id": "i", "status": "pending_delete"}])
def test_a_concurrent_delete_counts_as_already_gone(monkeypatch: pytest.MonkeyPatch,
                                                    left: dict[str, Any] | None) -> None:
    racing(monkeypatch, left)
    assert imageapi.delete_image(object(), "i") is False  # type: ignore[arg-type]


def test_a_refused_delete_of_a_live_image_still_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    racing(monkeypatch, {"id": "i", "status": "active"})
    with pytest.raises(PermanentSiteError, match="400"):
        imageapi.delete_image(object(), "i")  # type: ignore[arg-type]
