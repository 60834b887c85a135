"""Decorator wrappers with the wrapped function's exact parameters.

A ``*args, **kwargs`` wrapper costs about as much as the call it wraps (the
keyword dict alone is ~40 ns), so for plain functions the wrapper is compiled
with the same parameter list and forwards the arguments one by one. Anything
else (builtins, bound methods, callable objects) gets the generic form.

An ``async def`` function is wrapped by a `LeanCall` (C): an ``async def`` wrapper
would add a second coroutine to every call. It takes the function's ``__code__``,
defaults and annotations, so ``inspect.iscoroutinefunction`` holds for it as for
the function.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

from obelisk.breaker._lean import LeanCall

__all__ = ["wrap"]

PREFIX = "_cb_"                  # the generated code's own names; no parameter may use it

_TEMPLATE = """
def _cb_factory(_cb_fn, _cb_breaker):
    {async_}def wrapper({parameters}):
        _cb_token = _cb_breaker._lean_token
        if _cb_token is not None:
            try:
                _cb_result = {await_}_cb_fn({arguments})
            except BaseException as _cb_error:
                _cb_breaker._record_error(_cb_token, _cb_error, None)
                raise
            if _cb_breaker._lean_token is not _cb_token:
                _cb_breaker._record(_cb_token, False, None, None)
            return _cb_result
        return {await_}_cb_breaker.{guarded}(_cb_fn, {arguments})
    return wrapper
"""


def wrap(fn: Callable[..., Any], breaker: Any) -> Callable[..., Any]:
    """`fn` guarded by `breaker`: a lean path while the breaker allows it, else its full call."""
    is_async = inspect.iscoroutinefunction(fn)
    if is_async and inspect.isfunction(fn):
        return _lean_call(fn, breaker)
    parameters, arguments = _parameter_lists(fn) or ("*args, **kwargs", "*args, **kwargs")
    source = _TEMPLATE.format(
        async_="async " if is_async else "", await_="await " if is_async else "",
        guarded="call_async" if is_async else "call",
        parameters=parameters, arguments=arguments)
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<breaker wrapper of {getattr(fn, '__qualname__', fn)!r}>", "exec"),
         namespace)
    wrapper = namespace["_cb_factory"](fn, breaker)
    if inspect.isfunction(fn):
        wrapper.__defaults__ = fn.__defaults__
        wrapper.__kwdefaults__ = dict(fn.__kwdefaults__) if fn.__kwdefaults__ else None
    return functools.update_wrapper(wrapper, fn)


def _lean_call(fn: types.FunctionType, breaker: Any) -> Callable[..., Any]:
    guarded: Any = LeanCall(fn, breaker._lean, breaker)
    # what inspect reads to tell a coroutine function (_signature_is_functionlike)
    guarded.__code__ = fn.__code__
    guarded.__defaults__ = fn.__defaults__
    guarded.__kwdefaults__ = fn.__kwdefaults__
    return functools.update_wrapper(guarded, fn)


def _parameter_lists(fn: Callable[..., Any]) -> tuple[str, str] | None:
    """The parameter list of a plain function and the matching call arguments, or None."""
    if not inspect.isfunction(fn):
        return None
    code = fn.__code__
    names = code.co_varnames
    positional = list(names[:code.co_argcount])
    keyword_only = list(names[code.co_argcount:code.co_argcount + code.co_kwonlyargcount])
    rest = names[code.co_argcount + code.co_kwonlyargcount:]
    star = rest[0] if code.co_flags & inspect.CO_VARARGS else None
    star_star = rest[1 if star else 0] if code.co_flags & inspect.CO_VARKEYWORDS else None
    if any(name.startswith(PREFIX) for name in [*positional, *keyword_only, star or "",
                                                 star_star or ""]):
        return None
    parameters = positional.copy()
    if code.co_posonlyargcount:
        parameters.insert(code.co_posonlyargcount, "/")
    arguments = positional.copy()
    if star:
        parameters.append(f"*{star}")
        arguments.append(f"*{star}")
    elif keyword_only:
        parameters.append("*")
    parameters += keyword_only
    arguments += [f"{name}={name}" for name in keyword_only]
    if star_star:
        parameters.append(f"**{star_star}")
        arguments.append(f"**{star_star}")
    return ", ".join(parameters), ", ".join(arguments)
