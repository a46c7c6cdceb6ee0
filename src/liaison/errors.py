"""Every error a user can see.

The tree, with the CLI exit code and the HTTP status each maps to::

    LiaisonError                      exit 1, 500
    ├── InputError                    exit 2, 400   bad input: nothing was written
    │   ├── PayloadTooLarge           exit 2, 413
    │   ├── MalformedJSON             exit 2, 400
    │   ├── NotStix                   exit 2, 400
    │   └── HostileStructure          exit 2, 400   too deep, a string too long
    ├── ConfigError                   exit 2, 400   an alliance file or setting is wrong
    ├── NodeError                     exit 1, 500
    │   ├── NodeNotInitialised        exit 1, 500   run `liaison init` first
    │   └── NodeConflict              exit 1, 500   init would overwrite another node or key
    ├── UnknownPartner                exit 2, 404
    └── NotFound                      exit 2, 404

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; the TAXII
server answers with ``error.http_status`` and an error body built from the same text.
"""

from __future__ import annotations


class LiaisonError(Exception):
    exit_code = 1
    http_status = 500
    title = "Internal error"


class InputError(LiaisonError):
    exit_code = 2
    http_status = 400
    title = "Bad input"


class PayloadTooLarge(InputError):
    http_status = 413
    title = "Payload too large"


class MalformedJSON(InputError):
    title = "Malformed JSON"


class NotStix(InputError):
    title = "Not STIX 2.1"


class HostileStructure(InputError):
    title = "Input structure refused"


class ConfigError(LiaisonError):
    exit_code = 2
    http_status = 400
    title = "Configuration error"


class NodeError(LiaisonError):
    title = "Node error"


class NodeNotInitialised(NodeError):
    title = "Node not initialised"


class NodeConflict(NodeError):
    title = "Node conflict"


class UnknownPartner(LiaisonError):
    exit_code = 2
    http_status = 404
    title = "Unknown partner"


class NotFound(LiaisonError):
    exit_code = 2
    http_status = 404
    title = "Not found"
