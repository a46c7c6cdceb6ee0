"""What the TAXII handlers share: the node, its keys, the sign-in backend, caches. One per
app, on ``app.state.taxii``; handlers are module-level functions that read it from the
request."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import HTTPConnection

from liaison.fingerprint.prepared import Preparer
from liaison.ledger import log
from liaison.ledger.note import Verifier
from liaison.node import Node, load_signing_key
from liaison.release.deliver import CopyCache, Keys, node_keys
from liaison.release.rights import RightsCache
from liaison.stix.validate import ValidatorProcess
from liaison.taxii.credentials import Authenticator, authenticator_for
from liaison.taxii.cursor import Cursors


@dataclass
class TaxiiContext:
    node: Node
    sign_in: Authenticator
    signing_key: Ed25519PrivateKey
    cursors: Cursors  # signed `next` tokens
    keys: Keys  # what deliveries mark and sign copies with
    verifier: Verifier  # the ledger's checkpoint verifier
    validator: ValidatorProcess
    rights: RightsCache
    copies: CopyCache  # bytes of recent copies: repeated pages are not marked again
    preparer: Preparer  # finds fingerprint slots of new versions in the background

    @classmethod
    def for_node(cls, node: Node, authenticator: Authenticator | None = None) -> TaxiiContext:
        key = load_signing_key(node.settings.home)
        raw = serialization.Encoding.Raw
        private = key.private_bytes(
            raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return cls(
            node=node,
            sign_in=authenticator or authenticator_for(node.engine, node.settings),
            signing_key=key,
            cursors=Cursors(private),
            keys=node_keys(node),
            verifier=log.node_verifier(node.country, node.public_key),
            validator=ValidatorProcess(),
            rights=RightsCache(),
            copies=CopyCache(),
            preparer=Preparer(node.engine),
        )


def context_of(request: HTTPConnection) -> TaxiiContext:
    context: TaxiiContext = request.app.state.taxii
    return context
