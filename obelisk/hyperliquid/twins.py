"""Client methods written once for a blocking client and its asyncio twin.

A method of the shared base class only builds a :class:`Request`; the client's
``_submit`` sends it, blocking in a :class:`BlockingClient` and as a coroutine in
an :class:`AsyncClient`. :class:`client_method` keeps each method's exact
result type on both: ``T`` on the blocking client, ``Awaitable[T]`` on the
asyncio one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

__all__ = ["AsyncClient", "BlockingClient", "Request", "client_method"]

P = ParamSpec("P")
T = TypeVar("T")


class Request(Generic[T]):
    """What a client method builds: something its client sends and answers with a ``T``."""


class BlockingClient:
    """A client whose ``_submit(request)`` returns the answer."""


class AsyncClient:
    """A client whose ``_submit(request)`` is a coroutine."""


class client_method(Generic[P, T]):
    """Turns ``build(client, ...) -> Request[T]`` into a method of both twins that sends
    what `build` returns through the client's ``_submit``."""

    def __init__(self, build: Callable[Concatenate[Any, P], Request[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type) -> client_method[P, T]: ...

    @overload
    def __get__(self, client: BlockingClient, owner: type) -> Callable[P, T]: ...

    @overload
    def __get__(self, client: AsyncClient, owner: type) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, client: Any, owner: type) -> Any:
        if client is None:
            return self
        build = self._build

        def send(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._submit(build(client, *args, **kwargs))

        send.__doc__ = build.__doc__
        return send
