"""Leak tracing: per-partner fingerprint codes and the accusation of the partners behind a leak."""
