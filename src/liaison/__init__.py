"""Liaison: share STIX 2.1 intelligence with allies and keep control of what was shared."""

__version__ = "0.1.0"
