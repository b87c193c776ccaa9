"""Secrets kept out of every file and message: credentials and key-like query parameters cut from URLs, and
command lines made safe to record.

A URL keeps its scheme, host, port and path; ``user:password@`` is dropped and the value of any query parameter
whose name looks like a credential (``key``, ``api_key``, ``token``, ``sig``, ...) becomes ``***``. Text that
contains URLs (an error message, a command line) has each of them redacted the same way.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
_SECRET_PARAMETER = re.compile(
    r"(key|token|secret|password|passwd|pwd|sig|signature|auth|credential|session)", re.IGNORECASE
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE_OPTIONS = ("--api-key-env",)  # options whose value must be a variable name, never a key


def redact_url(url: str) -> str:
    """``url`` without a ``user:password@`` part and with key-like query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL we can take apart: show only its scheme
        return url.split("://", 1)[0] + "://" + HIDDEN if "://" in url else url
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{host}:{port}" if port else host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAMETER.search(name) for name, _ in pairs):
            query = urlencode(
                [(name, HIDDEN if _SECRET_PARAMETER.search(name) else value) for name, value in pairs],
                safe="*",
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


def is_variable_name(value: str) -> bool:
    """Whether ``value`` can be the name of an environment variable (and so is not a key pasted in its place)."""
    return _VARIABLE_NAME.fullmatch(value) is not None


def redacted_command(argv: Sequence[str]) -> str:
    """``argv`` as one shell-quoted line with URLs redacted and a key given to ``--api-key-env`` hidden."""
    safe: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next and not is_variable_name(argument):
            argument = HIDDEN
        hide_next = argument in _VALUE_OPTIONS
        option, equals, value = argument.partition("=")
        if equals and option in _VALUE_OPTIONS and not is_variable_name(value):
            argument = f"{option}={HIDDEN}"
        safe.append(redact_text(argument))
    return shlex.join(safe)
