"""STIX 2.1 objects: parsing untrusted payloads, validation, timestamps and versions."""
