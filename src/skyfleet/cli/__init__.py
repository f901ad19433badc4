"""The ``skyfleet`` command line: the server, the demo, and a client of the API."""
