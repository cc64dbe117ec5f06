"""OpenTelemetry semantic conventions, old and new, onto the attribute names the analyses read.

The analyses read the names docs/bundle-format.md lists (`http.status_code`, `db.statement`,
`peer.service`, `client.ip`, `retry.attempt`, …), which are the older conventions. Instrumentation
written against the current conventions (HTTP stable since 1.20, database since 1.26) writes
`http.response.status_code`, `db.query.text`, `server.address`. A record's attributes keep every
name as written, and gain the name the analyses read when only another spelling is present
("keep both": a person searching for either finds it).

Also here: levels and severities in any common spelling onto the four canonical levels, and span
and trace ids in any common encoding onto lower-case hex.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

# canonical name → the other names that mean the same, in order of preference.
ALIASES: dict[str, tuple[str, ...]] = {
    "http.status_code": ("http.response.status_code", "status_code", "status"),
    "http.method": ("http.request.method", "method"),
    "http.route": (),
    "http.target": ("url.path",),
    "http.url": ("url.full",),
    "http.scheme": ("url.scheme",),
    "http.user_agent": ("user_agent.original",),
    "net.peer.name": ("server.address",),
    "net.peer.port": ("server.port",),
    "db.statement": ("db.query.text", "db.query"),
    "db.name": ("db.namespace",),
    "db.operation": ("db.operation.name",),
    "db.sql.table": ("db.collection.name",),
    "db.system": ("db.system.name",),
    "messaging.destination": ("messaging.destination.name",),
    "client.ip": ("client.address", "http.client_ip", "net.sock.peer.addr", "network.peer.address"),
    "retry.attempt": ("http.request.resend_count",),
    # Request logs name the route `path` (docs/bundle-format.md, request logs).
    "path": ("http.route", "url.path", "http.target"),
}
_SPELLINGS = frozenset(alias for aliases in ALIASES.values() for alias in aliases)
# Names that are not of the HTTP request itself: a log record's `status` is often a word
# ("ok", "failed"), so only a number is taken as the status code from it.
NUMERIC_ONLY = {"status_code", "status"}


def canonical_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes with the canonical names added where only another spelling is present."""
    result = dict(attributes)
    present = _SPELLINGS.intersection(result)  # at C speed: this runs for every span and line
    if not present:
        return result
    for name in sorted({name for alias in present for name in _REACHED[alias]}, key=_ORDER.__getitem__):
        if name in result:
            continue
        for alias in ALIASES[name]:
            value = result.get(alias)
            if value is None or (alias in NUMERIC_ONLY and not _is_number(value)):
                continue
            result[name] = int(value) if alias in NUMERIC_ONLY else value
            break
    return result


def _reached(alias: str) -> set[str]:
    """The canonical names a spelling may add, itself or through a name it adds (url.path adds
    http.target, which `path` reads)."""
    names = {name for name, aliases in ALIASES.items() if alias in aliases}
    for name in list(names):
        names |= _reached(name) if name != alias else set()
    return names


_ORDER = {name: index for index, name in enumerate(ALIASES)}
_REACHED = {alias: _reached(alias) for alias in _SPELLINGS}


def _is_number(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit())


# The system's name for the database or cache a client span talks to (db.system values of the
# conventions), used as the callee's service name when the span does not name a peer service.
def database_service(attributes: Mapping[str, Any]) -> str | None:
    system = attributes.get("db.system")
    return str(system) if system else None


def peer_of(attributes: Mapping[str, Any], database: str | None = None) -> str | None:
    """Who a client span calls: `peer.service`, else the database (`database` when given, else its
    system's name), else the server host."""
    system = database_service(attributes)
    named = database if system else None
    for value in (attributes.get("peer.service"), named, system, attributes.get("net.peer.name")):
        if value:
            return str(value)
    return None


# ----------------------------------------------------------------------------------------------
# Levels

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
_LEVEL_WORDS = {
    "TRACE": "DEBUG",
    "DEBUG": "DEBUG",
    "DBG": "DEBUG",
    "FINE": "DEBUG",
    "FINER": "DEBUG",
    "FINEST": "DEBUG",
    "VERBOSE": "DEBUG",
    "DEBUG1": "DEBUG",
    "DEBUG2": "DEBUG",
    "DEBUG3": "DEBUG",
    "DEBUG4": "DEBUG",
    "DEBUG5": "DEBUG",
    "INFO": "INFO",
    "INF": "INFO",
    "INFORMATION": "INFO",
    "NOTICE": "INFO",
    "NOTE": "INFO",
    "LOG": "INFO",
    "SYSTEM": "INFO",
    "STATEMENT": "INFO",
    "DETAIL": "INFO",
    "HINT": "INFO",
    "CONTEXT": "INFO",
    "WARN": "WARN",
    "WARNING": "WARN",
    "WRN": "WARN",
    "ERROR": "ERROR",
    "ERR": "ERROR",
    "EROR": "ERROR",
    "SEVERE": "ERROR",
    "CRITICAL": "ERROR",
    "CRIT": "ERROR",
    "FATAL": "ERROR",
    "PANIC": "ERROR",
    "ALERT": "ERROR",
    "EMERG": "ERROR",
    "EMERGENCY": "ERROR",
}


def level_of(value: Any) -> str | None:
    """The canonical level of a level field: a word in any case (`warning`, `Fatal`, `E`), or a
    number as pino/bunyan (10 trace … 60 fatal) or syslog/journald (0 emerg … 7 debug) write it;
    None when unknown."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _level_number(int(value))
    text = str(value).strip().upper()
    if text.isdigit():
        return _level_number(int(text))
    if text in _LEVEL_WORDS:
        return _LEVEL_WORDS[text]
    word = re.sub(r"[^A-Z0-9]", "", text)
    if word in _LEVEL_WORDS:
        return _LEVEL_WORDS[word]
    # One-letter levels (glog, zap's console encoder: I, W, E, F, D).
    return {"D": "DEBUG", "I": "INFO", "W": "WARN", "E": "ERROR", "F": "ERROR"}.get(word)


def _level_number(number: int) -> str | None:
    if 0 <= number <= 7:  # syslog severities
        return "ERROR" if number <= 3 else "WARN" if number == 4 else "INFO" if number <= 6 else "DEBUG"
    if number % 10 == 0 and 10 <= number <= 60:
        return "DEBUG" if number <= 20 else "INFO" if number == 30 else "WARN" if number == 40 else "ERROR"
    return None


def severity_number_level(number: Any) -> str | None:
    """OpenTelemetry's SeverityNumber (1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17-24 error
    and fatal), as an integer or as its enum name (`SEVERITY_NUMBER_WARN`)."""
    if isinstance(number, str) and not number.isdigit():
        return level_of(number.upper().removeprefix("SEVERITY_NUMBER_"))
    try:
        value = int(number)
    except (TypeError, ValueError):
        return None
    if not 1 <= value <= 24:
        return None
    return "DEBUG" if value <= 8 else "INFO" if value <= 12 else "WARN" if value <= 16 else "ERROR"


# ----------------------------------------------------------------------------------------------
# Ids

_HEX = re.compile(r"[0-9a-f]+")


def hex_id(value: Any, length: int) -> str | None:
    """A trace id (length 32) or span id (16) as lower-case hex: from hex (with or without `0x`,
    any case, or dashed UUID form), base64 as protobuf's JSON writes bytes, or an integer (the
    SDK's int ids). None for empty or all-zero ids (OTLP's "no parent"); a string of the wrong
    length is returned as it is, for the caller to report."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:0{length}x}"
    else:
        text = str(value).strip().lower().removeprefix("0x").replace("-", "")
        if not (_HEX.fullmatch(text) and len(text) == length) and len(text) == 4 * -(-length // 6):
            try:
                text = base64.b64decode(str(value).strip(), validate=True).hex()
            except (binascii.Error, ValueError):
                return str(value)
    if not text.strip("0"):
        return None
    return text
