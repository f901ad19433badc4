"""One address space across sites: every IP and MAC of the global view, routing domains, conflicts."""
