"""The dependencies routes name as parameters: the app's one model service, the API key check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from model_server.api.errors import ApiError
from model_server.service import ModelService

_bearer = HTTPBearer(auto_error=False)


def get_service(request: Request) -> ModelService:
    service: ModelService = request.app.state.service
    return service


ServiceDep = Annotated[ModelService, Depends(get_service)]


def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """401 unless ``Authorization: Bearer`` carries API_KEY (compared in constant time)."""
    key = get_service(request).settings.api_key.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if not key or not secrets.compare_digest(given, key):
        raise ApiError(401, "a valid API key is needed: Authorization: Bearer <API_KEY>")
