"""Open-source documents become STIX intelligence of the node's own."""
