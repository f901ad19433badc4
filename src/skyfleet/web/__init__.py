"""The web dashboard's files: one HTML page, one script and one style sheet, served by Skyfleet itself.

Why a package directory and no build step: the dashboard must work on a machine without internet (no
CDN, nothing fetched at run time) and be reviewable as written. The page holds no data; every figure it
shows comes from the REST API with the user's own token, so the access decision stays in one place
(``skyfleet.api.access``) and a tenant sees in the browser exactly what the API shows it.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Where ``index.html``, ``app.js`` and ``app.css`` live (package data of the wheel)."""
