# The few FastAPI names the documentation's blocks use, typed as FastAPI types them, so that
# `mypy --strict` checks those blocks without FastAPI installed (tests/test_docs.py).
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

class Headers(Mapping[str, str]):
    def get(self, key: str, default: str | None = None) -> str | None: ...  # type: ignore[override]

class State:
    def __getattr__(self, name: str) -> Any: ...
    def __setattr__(self, name: str, value: Any) -> None: ...

class _App:
    state: State

class Request:
    headers: Headers
    app: _App
    async def body(self) -> bytes: ...
    async def json(self) -> Any: ...

class Response:
    status_code: int
    headers: Headers

class HTTPException(Exception):
    def __init__(
        self, status_code: int, detail: Any = None, headers: Mapping[str, str] | None = None
    ) -> None: ...

class FastAPI(_App):
    def __init__(
        self,
        *,
        lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    ) -> None: ...
    def post(self, path: str, *, status_code: int | None = None) -> Callable[[_F], _F]: ...
    def get(self, path: str) -> Callable[[_F], _F]: ...

__all__ = ["FastAPI", "HTTPException", "Request", "Response"]
