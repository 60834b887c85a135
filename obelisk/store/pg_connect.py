"""How a PostgreSQL store reaches its server: the URL, kept secret, and its connections.

The password in a URL never leaves :class:`DatabaseURL`: its ``str`` and ``repr``,
every error it raises and every message that names the database show the URL with
the password masked as ``***``, and the text of a driver error that would carry it
is scrubbed (the driver echoes a malformed URL whole).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from obelisk.store.errors import TraceConfigError, TraceStoreError

__all__ = ["DatabaseURL", "mask_password"]

MASK = "***"
# The user info of a URL ("scheme://user:password@"): libpq ends it at the first "@".
_USERINFO_PASSWORD = re.compile(r"^([a-zA-Z][\w+.-]*://[^/?#@:]*:)([^@]*)@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)
# Dead peers are noticed within tens of seconds, not the kernel's two hours, so the
# writer's retries and write deadline apply to a server that vanished mid-batch.
_TCP_SETTINGS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                 "keepalives_count": 3, "tcp_user_timeout": 20_000}


def mask_password(url: str) -> str:
    """`url` with any password (in the user info or a ``password=`` parameter) as ``***``."""
    url = _USERINFO_PASSWORD.sub(lambda m: f"{m[1]}{MASK}@", url, count=1)
    return _QUERY_PASSWORD.sub(lambda m: f"{m[1]}{MASK}", url)


class DatabaseURL:
    """A ``postgresql://`` URL that connects but never shows its password.

    Raises TraceConfigError (naming the masked URL) if libpq cannot parse it.
    """

    __slots__ = ("_params", "_secrets", "_url", "masked")

    def __init__(self, url: str) -> None:
        self._url = url
        self.masked = mask_password(url)
        found = [m[2] for m in (_USERINFO_PASSWORD.match(url), *_QUERY_PASSWORD.finditer(url))
                 if m is not None and m[2]]
        self._secrets = sorted({*found, *(unquote(s) for s in found)}, key=len, reverse=True)
        try:
            self._params: dict[str, Any] = conninfo_to_dict(url)
        except psycopg.Error as error:
            raise TraceConfigError(f"not a PostgreSQL URL: {self.masked} "
                                   f"({self.scrub(str(error))})") from None
        password = self._params.get("password")
        if password and password not in self._secrets:
            self._secrets = sorted({*self._secrets, password}, key=len, reverse=True)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"DatabaseURL({self.masked!r})"

    def scrub(self, text: str) -> str:
        """`text` with the password masked wherever it appears."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def connect(self, *, application_name: str, timeout_s: float,
                lock_timeout_ms: int | None = None) -> psycopg.Connection:
        """A new connection in autocommit mode; TraceStoreError naming the masked URL if
        the server cannot be reached or refuses it.

        `lock_timeout_ms` bounds how long a statement waits for a lock (0 counts as 1 ms:
        PostgreSQL reads 0 as no limit). Settings the URL gives win over these defaults.
        """
        params = self._params
        settings: dict[str, Any] = {name: value for name, value in _TCP_SETTINGS.items()
                                    if name not in params}
        settings["connect_timeout"] = params.get("connect_timeout", max(2, round(timeout_s)))
        settings["application_name"] = params.get("application_name", application_name)
        # a commit is acknowledged (durable=True, wait, flush) only once it is on disk,
        # whatever the server's or the database's default
        options = f"{params.get('options', '')} -c synchronous_commit=on"
        if lock_timeout_ms is not None:
            options += f" -c lock_timeout={max(1, lock_timeout_ms)}"
        settings["options"] = options.strip()
        try:
            return psycopg.connect(self._url, autocommit=True, **settings)
        except psycopg.Error as error:
            text = str(error)
            scrubbed = self.scrub(text)
            raised = TraceStoreError(f"cannot connect to the trace database {self.masked}: "
                                     f"{scrubbed}")
            if scrubbed == text:                # keep the driver's error unless it tells
                raise raised from error
            raise raised from None
