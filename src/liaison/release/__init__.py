"""The one path by which a copy leaves the node (docs/taxii.md, "The release path").

``rights`` says what a partner may read and write and which release classes it is granted,
cached per policy serial; ``deliver`` turns a page of granted versions into the partner's
copies (tearline, reference cuts, fingerprint) and records them (disclosures and ledger
entries) before anything is sent. The TAXII routes and ``liaison disclose`` call it; so will
the web pages and the push to peer nodes.
"""
