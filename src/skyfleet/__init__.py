"""Skyfleet: one control point for a fleet of independent OpenStack clouds."""

__version__ = "0.1.0"
