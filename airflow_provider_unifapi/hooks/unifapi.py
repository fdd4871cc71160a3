"""UnifAPIHook: turns an Airflow ``unifapi`` connection into the pure UnifAPI clients."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_unifapi._compat import BaseHook, aget_connection
from airflow_provider_unifapi.client import DEFAULT_BASE_URL, AsyncUnifAPIClient, ClientConfig, UnifAPIClient
from airflow_provider_unifapi.client.config import EXTRA_FIELDS, ExtraKind
from airflow_provider_unifapi.client.validation import is_loopback
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInputError
from airflow_provider_unifapi.get_provider_info import HIDDEN_FIELDS, PLACEHOLDERS, RELABELING, field_help
from airflow_provider_unifapi.hooks import balance_reading, connection_check
from airflow_provider_unifapi.models import BalanceReading


class UnifAPIHook(BaseHook):
    """Interact with UnifAPI through an Airflow connection of type ``unifapi`` (docs/connection.md).

    :param unifapi_conn_id: the Airflow connection id.
    """

    conn_name_attr = "unifapi_conn_id"
    default_conn_name = "unifapi_default"
    conn_type = "unifapi"
    hook_name = "UnifAPI"

    def __init__(self, unifapi_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unifapi_conn_id = unifapi_conn_id
        self._sync_client: UnifAPIClient | None = None
        self._async_client: AsyncUnifAPIClient | None = None

    # -- connection form (Airflow < 3.2 calls these; 3.2+ reads get_provider_info) ----------------
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Widgets of the extra fields (Airflow 2.11's form)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, IntegerField, StringField
        from wtforms.validators import NumberRange
        from wtforms.validators import Optional as OptionalValidator

        # Numbers and paths are text: Airflow 2.11 has no FloatField; the hook parses and range-checks them.
        classes = {ExtraKind.INTEGER: IntegerField, ExtraKind.BOOLEAN: BooleanField}
        widgets: dict[str, Any] = {}
        for spec in EXTRA_FIELDS:
            # No default: a saved form stores only what the user set; the client's defaults do the rest.
            options: dict[str, Any] = {"validators": [OptionalValidator()], "description": field_help(spec)}
            if spec.kind is ExtraKind.INTEGER:
                options["validators"].append(NumberRange(min=spec.minimum, max=spec.maximum))
            if spec.kind is not ExtraKind.BOOLEAN:
                options["widget"] = BS3TextFieldWidget()
            widgets[spec.name] = classes.get(spec.kind, StringField)(lazy_gettext(spec.label), **options)
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hide unused fields (Port stays: see the provider info) and label the password "API key"."""
        return {
            "hidden_fields": list(HIDDEN_FIELDS),
            "relabeling": dict(RELABELING),
            "placeholders": dict(PLACEHOLDERS),
        }

    # -- clients ----------------------------------------------------------------------------------
    def client_kwargs(self, conn: Any = None) -> dict[str, Any]:
        """Arguments of :class:`~airflow_provider_unifapi.client.UnifAPIClient` for the connection."""
        conn = conn if conn is not None else self.get_connection(self.unifapi_conn_id)
        api_key = conn.password
        if not api_key:
            raise UnifAPIInputError(
                f"connection {self.unifapi_conn_id!r} password",
                "is empty: put the UnifAPI API key in the connection's password ('API key') field",
            )
        return {"api_key": api_key, "base_url": _base_url(conn), **self.config(conn).client_kwargs()}

    def config(self, conn: Any = None) -> ClientConfig:
        """The connection's extras, type-checked (UI strings converted); unknown keys warned about."""
        conn = conn if conn is not None else self.get_connection(self.unifapi_conn_id)
        return ClientConfig.from_extras(conn.extra_dejson or {}, where=f"connection {self.unifapi_conn_id!r}")

    def get_conn(self) -> UnifAPIClient:
        """The :class:`UnifAPIClient` of this connection: one per hook, closed by :meth:`close`."""
        if self._sync_client is None:
            self._sync_client = UnifAPIClient(**self.client_kwargs())
        return self._sync_client

    @property
    def base_url(self) -> str:
        """The connection's API base URL (never the key)."""
        return str(self.client_kwargs()["base_url"])

    def close(self) -> None:
        """Close the client this hook created, if any (safe to call more than once)."""
        client, self._sync_client = self._sync_client, None
        if client is not None:
            client.close()

    def __enter__(self) -> UnifAPIHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the workspace balance (remembered for free, or read live for 1 credit) ----------------------
    def recall_balance(self) -> BalanceReading | None:
        """The workspace balance remembered from an earlier response with this key (free), or ``None``."""
        return balance_reading.recall(self.balance_variable())

    def recall_fresh_balance(self, min_balance: int) -> BalanceReading | None:
        """A remembered balance at most ``balance_max_age`` seconds old and at least ``min_balance``,
        else ``None`` (an old one may be far too high, a low one may predate a top-up).

        :param min_balance: the run's floor.
        """
        fresh = balance_reading.remembered_check(self.recall_balance(), min_balance, self.balance_max_age())
        return fresh.reading if fresh is not None else None

    def remember_balance(self, reading: BalanceReading | None) -> None:
        """Remember ``reading`` for the balance sensor unless a newer one is stored; never raises."""
        if reading is not None:
            balance_reading.remember(self.balance_variable(), reading)

    def balance_variable(self, conn: Any = None) -> str:
        """Name of the Variable remembering the balance seen with this connection's API key."""
        conn = conn if conn is not None else self.get_connection(self.unifapi_conn_id)
        return balance_reading.variable_name(conn.password or "")

    def balance_max_age(self) -> float:
        """Seconds a remembered balance answers for free: the connection's ``balance_max_age`` extra."""
        return self.config().balance_max_age

    def check_balance(
        self, min_balance: Any, *, max_age: float | None = None, probe_hashtag_id: Any = None
    ) -> balance_reading.BalanceCheck:
        """Is the workspace balance at least ``min_balance``? (docs/balance-sensor.md)

        :param min_balance: credits the workspace must hold (an int >= 0, or a rendered string of digits).
        :param max_age: seconds a remembered reading may answer; ``None``: the ``balance_max_age`` extra.
        :param probe_hashtag_id: hashtag to read the balance with; ``None``: a hashtag search, ``limit=1``.
        :raises UnifAPIInputError: an argument or the connection is unusable (names what to fix).
        """
        threshold, age, probe_id = self._balance_arguments(min_balance, max_age, probe_hashtag_id)
        free = balance_reading.remembered_check(self.recall_balance(), threshold, age)
        if free is not None:
            return free
        check = balance_reading.LiveProbe(self.unifapi_conn_id, self.get_conn(), threshold, probe_id).read()
        self.remember_balance(check.reading)
        return check

    async def acheck_balance(
        self, min_balance: Any, *, max_age: float | None = None, probe_hashtag_id: Any = None
    ) -> balance_reading.BalanceCheck:
        """Async :meth:`check_balance` (the triggerer's): the same decision and the same cost."""
        threshold, age, probe_id = await asyncio.to_thread(
            self._balance_arguments, min_balance, max_age, probe_hashtag_id
        )
        # The Variable lives in the metadata DB / API server: read and write it off the event loop.
        variable = self.balance_variable(await aget_connection(self, self.unifapi_conn_id))
        remembered = await asyncio.to_thread(balance_reading.recall, variable)
        free = balance_reading.remembered_check(remembered, threshold, age)
        if free is not None:
            return free
        client = await self.get_async_conn()
        check = await balance_reading.LiveProbe(self.unifapi_conn_id, client, threshold, probe_id).aread()
        await asyncio.to_thread(balance_reading.remember, variable, check.reading)
        return check

    def _balance_arguments(
        self, min_balance: Any, max_age: float | None, probe_hashtag_id: Any
    ) -> tuple[int, float, str | None]:
        return (
            balance_reading.check_min_balance(min_balance),
            self.balance_max_age()
            if max_age is None
            else balance_reading.check_seconds(max_age, "max_balance_age", allow_zero=True),
            balance_reading.check_probe_hashtag_id(probe_hashtag_id),
        )

    async def get_async_conn(self) -> AsyncUnifAPIClient:
        """The :class:`AsyncUnifAPIClient` of this connection: one per hook (so one event loop), closed
        by :meth:`aclose`."""
        if self._async_client is None:
            conn = await aget_connection(self, self.unifapi_conn_id)
            self._async_client = AsyncUnifAPIClient(**self.client_kwargs(conn))
        return self._async_client

    async def aclose(self) -> None:
        """Close both clients this hook created, if any."""
        client, self._async_client = self._async_client, None
        if client is not None:
            await client.aclose()
        self.close()

    async def __aenter__(self) -> UnifAPIHook:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def test_connection(self) -> tuple[bool, str]:
        """Check the key with one paid hashtag search; never raises (see ``connection_check``)."""
        name = connection_check.connection_name(self.unifapi_conn_id)
        try:
            conn = self.get_connection(self.unifapi_conn_id)
        except Exception as exc:  # a missing connection, a secrets backend error...
            return False, f"Could not read {name}: {type(exc).__name__}: {exc}"
        try:
            base_url = _base_url(conn)
        except UnifAPIError as exc:
            return False, connection_check.invalid_settings(name, exc)
        return connection_check.check_connection(self.unifapi_conn_id, conn, base_url)


def _base_url(conn: Any) -> str:
    """The base URL of a connection: host and Port as docs/connection.md says, except that a host
    without a scheme first takes the (hidden) schema field when that is ``http``/``https``."""
    host = (conn.host or "").strip() or DEFAULT_BASE_URL
    if "://" not in host:
        scheme = conn.schema if conn.schema in ("http", "https") else None
        if scheme is None:
            hostname = urlsplit(f"//{host}").hostname or ""
            scheme = "http" if is_loopback(hostname) else "https"
        host = f"{scheme}://{host}"
    port = conn.port or None
    if not port:
        return host
    parts = urlsplit(host)
    try:
        written = parts.port
    except ValueError:  # not a number: the client's URL check names the problem
        return host
    if written is not None:
        if written != int(port):
            raise UnifAPIInputError(
                "connection Port",
                f"is {port} but the Base URL {host!r} names port {written}: write the port once",
            )
        return host
    if (parts.scheme, int(port)) in (("https", 443), ("http", 80)):
        return host
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{int(port)}"))
