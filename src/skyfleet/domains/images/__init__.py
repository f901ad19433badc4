"""Images declared once and copied to sites: sync modes and sources (the copies are sync bindings)."""
