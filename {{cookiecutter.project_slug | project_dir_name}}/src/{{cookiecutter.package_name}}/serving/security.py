"""The API key: ``X-API-Key`` checked against ``API_KEY``, and declared only where it is checked.

On ``local`` the key is optional; elsewhere the app refuses to start without one. With no key
set there is no check, and the OpenAPI document declares none (a client generated from it would
otherwise send a header that nobody reads).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import ERROR_RESPONSES

if TYPE_CHECKING:
    from ..config import Settings

_API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The service's API_KEY setting"
)


class ApiKeyCheck:
    """Check ``X-API-Key`` against ``API_KEY`` in constant time."""

    def __init__(self, settings: Settings) -> None:
        self.expected = settings.api_key.get_secret_value().encode("utf-8")

    async def __call__(self, given: Annotated[str | None, Depends(_API_KEY_HEADER)]) -> None:
        """Refuse the request (401) unless it carries the key."""
        if given is None or not hmac.compare_digest(given.encode("utf-8"), self.expected):
            raise StarletteHTTPException(401, "missing or wrong X-API-Key header")


def protection(settings: Settings) -> tuple[list[Any], dict[int | str, dict[str, Any]]]:
    """The dependencies and OpenAPI responses of a protected route: empty when no key is set."""
    if not settings.api_key.get_secret_value():
        return [], {}
    return [Depends(ApiKeyCheck(settings))], {401: ERROR_RESPONSES[401]}
