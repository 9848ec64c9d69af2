"""The dependencies routes name as parameters: the app's one model service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from model_server.service import ModelService


def get_service(request: Request) -> ModelService:
    service: ModelService = request.app.state.service
    return service


ServiceDep = Annotated[ModelService, Depends(get_service)]
