"""TAXII error message resources: every error the server returns has this body."""

from __future__ import annotations

from typing import Any

from liaison.errors import LiaisonError


class TaxiiError(LiaisonError):
    """An HTTP error of the TAXII API, with its status and title."""

    exit_code = 2

    def __init__(self, http_status: int, title: str, description: str = "") -> None:
        super().__init__(description or title)
        self.http_status = http_status
        self.title = title
        self.description = description


def error_body(http_status: int, title: str, description: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"title": title, "http_status": str(http_status)}
    if description:
        body["description"] = description
    return body
