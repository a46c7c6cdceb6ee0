"""Every error a user can see.

The tree, with the CLI exit code and the HTTP status each maps to::

    LiaisonError                      exit 1, 500
    ├── InputError                    exit 2, 400   bad input: nothing was written
    │   ├── PayloadTooLarge           exit 2, 413
    │   ├── MalformedJSON             exit 2, 400
    │   ├── NotStix                   exit 2, 400
    │   ├── HostileStructure          exit 2, 400   too deep, a string too long
    │   └── UnknownType               exit 2, 400   a --type or --kind no one knows
    ├── ConfigError                   exit 2, 400   an alliance file, setting or option is wrong
    │   └── CannotListen              exit 2, 400   serve: the port is taken, the host not ours
    ├── NodeError                     exit 1, 500
    │   ├── NodeNotInitialised        exit 1, 500   run `liaison init` first
    │   └── NodeConflict              exit 1, 500   init would overwrite another node or key
    ├── UnknownPartner                exit 2, 404
    ├── NotFound                      exit 2, 404
    ├── Withheld                      exit 1, 403   the policy withholds it from that partner
    ├── PeerFailed                    exit 1, 502   a peer node is down or answered garbage
    ├── SignInRefused                 exit 2        refused before any secret is checked
    │   ├── Throttled                 exit 2, 429   too many failures: Retry-After
    │   └── ChecksBusy                exit 2, 503   every password-check slot is taken
    └── LedgerError                   exit 1, 500
        ├── InvalidProof              exit 1, 400   a Merkle proof or signed note does not verify
        └── LedgerTampered            exit 1, 500   the stored log is not the log that was signed

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; the TAXII
server answers with ``error.http_status`` and an error body built from the same text.
docs/cli.md ("Errors and exit codes") lists what the commands say.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``": did you mean X?"`` for the known name closest to a mistyped one, else ``""``."""
    close = difflib.get_close_matches(word, sorted(set(known)), n=1, cutoff=0.6)
    return f": did you mean {close[0]}?" if close else ""


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


class UnknownType(InputError):
    """A filter names a STIX type (neither STIX 2.1's nor a custom type in the store) or a
    ledger entry kind that does not exist."""

    title = "Unknown type"


class ConfigError(LiaisonError):
    exit_code = 2
    http_status = 400
    title = "Configuration error"


class CannotListen(ConfigError):
    """``liaison serve`` cannot listen where asked: the port is taken, needs privileges, or
    the host is not an address of this machine."""

    title = "Cannot listen"


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


class Withheld(LiaisonError):
    exit_code = 1
    http_status = 403
    title = "Withheld"


class PeerFailed(LiaisonError):
    """A peer node could not be reached, refused us, or answered what is not TAXII 2.1."""

    exit_code = 1
    http_status = 502
    title = "Peer failed"


class LedgerError(LiaisonError):
    title = "Ledger error"


class InvalidProof(LedgerError):
    """A Merkle proof, checkpoint or signature does not verify."""

    http_status = 400
    title = "Invalid proof"


class LedgerTampered(LedgerError):
    """The stored log differs from what was appended and signed; ``entry`` is the index of
    the first entry found wrong (None when the fault is not tied to one entry)."""

    title = "Ledger tampered"

    def __init__(self, message: str, entry: int | None = None) -> None:
        super().__init__(message)
        self.entry = entry


class SignInRefused(LiaisonError):
    """A sign-in refused before any secret was checked; the client may retry after
    ``retry_after`` seconds (the Retry-After header)."""

    exit_code = 2

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class Throttled(SignInRefused):
    """Too many consecutive failures for this user name or from this address."""

    http_status = 429
    title = "Too many requests"


class ChecksBusy(SignInRefused):
    """Every password-check slot of this process is taken."""

    http_status = 503
    title = "Service unavailable"
