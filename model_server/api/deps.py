"""The dependencies routes name as parameters: the app's one model service, and its API key."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from model_server.api.errors import ApiError
from model_server.service import ModelService

# Our own 401, in each API's error shape, rather than FastAPI's.
_bearer = HTTPBearer(auto_error=False, description="API_KEY, when the server sets one")


def get_service(request: Request) -> ModelService:
    service: ModelService = request.app.state.service
    return service


ServiceDep = Annotated[ModelService, Depends(get_service)]


def require_api_key(
    service: ServiceDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """401 unless ``Authorization: Bearer`` carries the server's API_KEY (when it has one)."""
    key = service.settings.api_key
    expected = key.get_secret_value() if key is not None else ""
    if not expected:
        return
    given = credentials.credentials if credentials is not None else ""
    # Constant time: how much of a guess matched must not show in how long the refusal took.
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise ApiError(
            401,
            "a valid API key is required: Authorization: Bearer <API_KEY>",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
