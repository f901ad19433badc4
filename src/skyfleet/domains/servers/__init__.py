"""Servers booted through Skyfleet, placed on a site and spilled over to the next when it refuses."""
