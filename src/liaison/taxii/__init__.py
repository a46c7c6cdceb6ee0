"""TAXII 2.1: the server partners pull their own view from, and (later) sync with peers."""
