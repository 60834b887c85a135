"""The SDK's HTTP errors, with the same fields and constructor arguments."""

from __future__ import annotations

from typing import Any


class Error(Exception):
    """Base of the errors the SDK's ``API.post`` raises."""


class ClientError(Error):
    """A 4xx answer.

    For a JSON body ``{"code", "msg", "data"}`` the fields are those; for any other body
    ``error_code`` is None and ``error_message`` is the text. As in the SDK, the text
    case passes the headers as ``error_data`` and ``None`` as ``header``.
    """

    def __init__(self, status_code: int, error_code: Any, error_message: Any, header: Any,
                 error_data: Any = None) -> None:
        self.status_code = status_code
        self.error_code = error_code
        self.error_message = error_message
        self.header = header
        self.error_data = error_data


class ServerError(Error):
    """A 5xx answer: its status and text."""

    def __init__(self, status_code: int, message: str) -> None:
        self.status_code = status_code
        self.message = message
