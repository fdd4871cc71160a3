"""Every setting of a UnifAPI connection, written once (docs/connection.md).

:data:`EXTRA_FIELDS`, read from :class:`ClientConfig`'s fields, is the single source of the clients'
keywords, the connection form and the README's table (tests keep them equal). Standard library
only: ``get_provider_info`` imports this module on every ``airflow`` command.
"""

from __future__ import annotations

import enum
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from airflow_provider_unifapi.exceptions import UnifAPIInputError

__all__ = ["EXTRA_FIELDS", "LEGACY_EXTRA_PREFIX", "ClientConfig", "ExtraField", "ExtraKind"]

log = logging.getLogger("airflow_provider_unifapi.client")

#: Prefix older Airflow UIs put before a connection's extra names (``extra__unifapi__timeout``).
LEGACY_EXTRA_PREFIX = "extra__unifapi__"
_MIB = 1024 * 1024
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


class ExtraKind(str, enum.Enum):
    """The closed set of kinds a connection extra can be."""

    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CA_BUNDLE = "CA-bundle path"


@dataclass(frozen=True)
class ExtraField:
    """One connection extra: what it is, its default and range, and how the form shows it.

    :param name: the extra's key in the connection's JSON (and the client keyword, if it is one).
    :param kind: integer, number, boolean or CA-bundle path.
    :param default: used when the extra is absent or empty.
    :param label: the form's label.
    :param help: the form's help text.
    :param minimum: smallest value accepted, inclusive.
    :param maximum: largest value accepted, inclusive.
    :param unit: ``"s"`` or ``"bytes"``: how the README shows the default.
    :param client_keyword: False for extras read by another part of the provider, not the client.
    """

    name: str
    kind: ExtraKind
    default: Any
    label: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    client_keyword: bool = True

    def conn_field(self) -> dict[str, Any]:
        """The ``conn-fields`` entry (no default: a saved form then stores only what the user set)."""
        json_type = "string" if self.kind is ExtraKind.CA_BUNDLE else self.kind.value
        schema: dict[str, Any] = {"type": [json_type, "null"]}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return {"label": self.label, "schema": schema, "description": self.help}

    def range_text(self) -> str:
        """The accepted values in words (README, error messages)."""
        if self.kind is ExtraKind.BOOLEAN:
            return "true or false"
        if self.kind is ExtraKind.CA_BUNDLE:
            return "the path of an existing CA bundle file"
        kind = "an integer" if self.kind is ExtraKind.INTEGER else "a number"
        if self.maximum is not None:
            return f"{kind} from {self.minimum:g} to {self.maximum:g}"
        return f"{kind} >= {self.minimum:g}"

    def default_text(self) -> str:
        """The default as the README states it: ``30 s``, ``16 MiB``, ``false``..."""
        if self.kind is ExtraKind.BOOLEAN:
            return str(self.default).lower()
        if self.kind is ExtraKind.CA_BUNDLE:
            return "the system CA bundle"
        if self.unit == "bytes" and self.default % _MIB == 0:
            return f"{self.default // _MIB} MiB"
        return f"{self.default:g} {self.unit}".rstrip()

    def check(self, value: Any, argument: str, fix: str = "") -> Any:
        """Return ``value`` normalised (numbers as float) or raise :class:`UnifAPIInputError`.

        :param fix: appended to the message (how to fix it where the value came from).
        """
        if self.kind is ExtraKind.CA_BUNDLE:
            return _check_ca_bundle(value, argument, fix)
        if not self._accepts(value):
            raise UnifAPIInputError(argument, f"must be {self.range_text()}, got {value!r}{fix}")
        return float(value) if self.kind is ExtraKind.NUMBER else value

    def _accepts(self, value: Any) -> bool:
        if self.kind is ExtraKind.BOOLEAN:
            return isinstance(value, bool)
        allowed = (int,) if self.kind is ExtraKind.INTEGER else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed) or math.isnan(value):
            return False
        return (self.minimum is None or value >= self.minimum) and (
            self.maximum is None or value <= self.maximum
        )

    def parse(self, value: Any, argument: str) -> Any:
        """Read the extra from a connection's JSON, where the UI stores strings (``"12.5"``, ``"true"``)."""
        fix = f"; write {self.range_text()}, or remove it to use the default ({self.default_text()})"
        try:
            converted = self._convert(value)
        except (TypeError, ValueError, OverflowError):
            raise UnifAPIInputError(argument, f"must be {self.range_text()}, got {value!r}{fix}") from None
        return self.check(converted, argument, fix)

    def _convert(self, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
        if self.kind is ExtraKind.BOOLEAN:
            return _to_bool(value)
        if self.kind is ExtraKind.CA_BUNDLE:
            return True if isinstance(value, str) and value.lower() == "true" else value
        if isinstance(value, bool):
            raise TypeError("a boolean is not a number")
        number = float(value) if isinstance(value, str) else value
        if self.kind is ExtraKind.INTEGER and isinstance(number, float):
            if not number.is_integer():
                raise ValueError("not an integer")
            return int(number)
        return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in (*_TRUE, *_FALSE):
        return value.lower() in _TRUE
    raise ValueError("not a boolean")


def _check_ca_bundle(value: Any, argument: str, fix: str) -> bool | str:
    if value is True:
        return True
    if value is False or (isinstance(value, str) and value.lower() == "false"):
        # TLS verification stays on: the key must not go to a host we have not authenticated.
        raise UnifAPIInputError(
            argument, "cannot turn TLS verification off; give a CA bundle path for a private CA instead"
        )
    if not isinstance(value, str) or not os.path.isfile(value):
        raise UnifAPIInputError(
            argument, f"must be True or the path of an existing CA bundle file, got {value!r}{fix}"
        )
    return value


def _extra(default: Any, **spec: Any) -> Any:
    """A :class:`ClientConfig` field whose metadata is the :class:`ExtraField`'s."""
    return field(default=default, metadata={"extra": spec})


@dataclass(frozen=True)
class ClientConfig:
    """Every extra a ``unifapi`` connection can carry, checked when built (``UnifAPIInputError``); all
    but ``balance_max_age`` (read by the balance sensor) are keywords of ``UnifAPIClient``."""

    timeout: float = _extra(
        30.0,
        kind=ExtraKind.NUMBER,
        label="Timeout (seconds)",
        help="Seconds to wait for each HTTP request (connect, read, write).",
        minimum=0.001,
        unit="s",
    )
    max_retries: int = _extra(
        5,
        kind=ExtraKind.INTEGER,
        label="Max retries",
        help="Retries of one call after a retryable error other than 429 (503, 500 internal_error, network).",
        minimum=0,
        maximum=100,
    )
    max_retry_wait: float = _extra(
        60.0,
        kind=ExtraKind.NUMBER,
        label="Max retry wait (seconds)",
        help="Longest single wait between retries; also caps a server's Retry-After.",
        minimum=0,
        unit="s",
    )
    backoff_base: float = _extra(
        0.5,
        kind=ExtraKind.NUMBER,
        label="Backoff base (seconds)",
        help="First backoff wait; doubles each retry, with jitter.",
        minimum=0,
        unit="s",
    )
    retry_billed_errors: bool = _extra(
        False,
        kind=ExtraKind.BOOLEAN,
        label="Retry billed errors",
        help="Also retry 200 responses whose body was cut short or unreadable (they were billed).",
    )
    max_rate_limit_wait: float = _extra(
        300.0,
        kind=ExtraKind.NUMBER,
        label="Max rate-limit wait (seconds)",
        help="Total seconds one call may wait on 429 answers before failing.",
        minimum=0,
        unit="s",
    )
    max_response_bytes: int = _extra(
        16 * _MIB,
        kind=ExtraKind.INTEGER,
        label="Max response size (bytes)",
        help="Refuse response bodies larger than this.",
        minimum=1024,
        unit="bytes",
    )
    max_connections: int = _extra(
        10,
        kind=ExtraKind.INTEGER,
        label="Max connections",
        help="Size of the keep-alive connection pool.",
        minimum=1,
        maximum=1000,
    )
    pace_requests: bool = _extra(
        True,
        kind=ExtraKind.BOOLEAN,
        label="Pace requests to the rate limit",
        help="Space requests by the X-RateLimit-* headers so the chains sharing a client meet no 429s.",
    )
    verify: bool | str = _extra(
        True,
        kind=ExtraKind.CA_BUNDLE,
        label="CA bundle path",
        help="CA bundle file for a private CA (TLS verification cannot be turned off).",
    )
    balance_max_age: float = _extra(
        300.0,
        kind=ExtraKind.NUMBER,
        label="Remembered balance max age (seconds)",
        help="How long a balance seen in an earlier response answers the balance sensor for free.",
        minimum=0,
        unit="s",
        client_keyword=False,
    )

    def __post_init__(self) -> None:
        for spec in EXTRA_FIELDS:
            # Normalised in place (ints given for numbers become floats); the object stays frozen after.
            object.__setattr__(self, spec.name, spec.check(getattr(self, spec.name), spec.name))

    def client_kwargs(self) -> dict[str, Any]:
        """The keywords of :class:`~airflow_provider_unifapi.client.UnifAPIClient` (and the async one)."""
        return {spec.name: getattr(self, spec.name) for spec in EXTRA_FIELDS if spec.client_keyword}

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any], *, where: str) -> ClientConfig:
        """Read a connection's extras: UI strings converted, ``None``/``""`` meaning the default,
        the legacy ``extra__unifapi__`` prefix accepted, unknown keys ignored with a warning.

        :param extras: the connection's extra JSON object.
        :param where: how errors name the connection, e.g. ``"connection 'unifapi_default'"``.
        """
        if not isinstance(extras, Mapping):
            raise UnifAPIInputError(f"{where} extra", 'must be a JSON object such as {"timeout": 30}')
        values: dict[str, Any] = {}
        unknown: list[str] = []
        for key, value in extras.items():
            name = key.removeprefix(LEGACY_EXTRA_PREFIX) if isinstance(key, str) else key
            spec = _BY_NAME.get(name)
            if spec is None:
                unknown.append(str(key))
            elif value is not None and value != "":  # an empty UI field means "use the default"
                values[name] = spec.parse(value, f"{where} extra {name!r}")
        if unknown:
            log.warning(
                "%s has unknown extra field(s) %s, ignored; known: %s",
                where,
                sorted(unknown),
                sorted(_BY_NAME),
            )
        return cls(**values)


#: The connection extras, in form order: the single table the clients, the form and the README follow.
EXTRA_FIELDS: tuple[ExtraField, ...] = tuple(
    ExtraField(name=f.name, default=f.default, **f.metadata["extra"]) for f in fields(ClientConfig)
)
_BY_NAME = {spec.name: spec for spec in EXTRA_FIELDS}
