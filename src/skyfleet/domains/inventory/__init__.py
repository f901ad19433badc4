"""The global inventory: every tenant resource observed on every site, with freshness."""
