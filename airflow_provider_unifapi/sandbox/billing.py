"""Billing and the ledger: charging a page and writing the call's ledger entry under the state lock.

The balance check, the charge and the ledger entry happen under one hold of the lock, so concurrent
calls can never both spend the same credits, and the ledger always agrees with the balance.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from airflow_provider_unifapi.sandbox.replies import Reply, error_body
from airflow_provider_unifapi.sandbox.request import Call
from airflow_provider_unifapi.sandbox.state import SandboxState


class Charge(NamedTuple):
    """A page that was paid for: what its ``billing`` object says."""

    records: int
    credits: int
    balance: int
    truncated: bool


def refusal_billing(balance: int, credits_required: int) -> dict[str, Any]:
    """The ``error.billing`` object of a 402: nothing charged, what the call would have needed.

    :param balance: the balance left.
    :param credits_required: credits the call needs (at least 1).
    """
    return {
        "balance_remaining": balance,
        "credits_required": credits_required,
        "credits_charged": 0,
        "records_charged": 0,
        "truncated_due_to_balance": False,
    }


def charge(state: SandboxState, call: Call, want: int) -> Charge | Reply:
    """Charge a page of ``want`` records and log the call; returns the :class:`Charge`, or the 402.

    A balance below the page serves (and charges) what it covers, flagged ``truncated``; an empty
    page still costs 1 credit. Calls whose fault plan makes them unbilled are logged at 0 credits.

    :param state: the workspace.
    :param call: the validated call.
    :param want: records the page would hold.
    """
    billed = call.fault is None or call.fault.kind == "slow" or call.fault.billed
    with state.lock:
        if call.workspace != state.resets:  # reset since it arrived: nothing to charge, nobody to answer
            return Reply(0, b"", call.request_id, action="drop")
        balance = state.balance
        if balance < 1:
            required = max(1, want)
            body = error_body(
                call.request_id,
                "insufficient_credits",
                f"insufficient credits: balance {balance}, this call needs at least {required}",
                billing=refusal_billing(balance, required),
            )
            log_call_locked(state, call, 402, "insufficient_credits", 0, 0)
            return Reply(402, body, call.request_id, headers=list(call.rate_headers))
        truncated = balance < want
        records = balance if truncated else want
        credits = max(1, records) if billed else 0
        state.balance = balance - credits
        log_call_locked(state, call, 200, None, records, credits)
        return Charge(records, credits, state.balance, truncated)


def log_call(
    state: SandboxState, call: Call, status: int | None, etype: str | None, records: int, credits: int
) -> None:
    """Write the ledger entry of a call that charged nothing here (takes the lock).

    :param state: the workspace.
    :param call: the call.
    :param status: the HTTP status sent, ``None`` when nothing was sent.
    :param etype: ``error.type`` of the reply, if any.
    :param records: records served.
    :param credits: credits charged.
    """
    with state.lock:
        log_call_locked(state, call, status, etype, records, credits)


def log_call_locked(
    state: SandboxState, call: Call, status: int | None, etype: str | None, records: int, credits: int
) -> None:
    """:func:`log_call` for a caller that already holds ``state.lock``; a call that arrived before
    the last reset is not this workspace's and is not logged."""
    if call.workspace != state.resets:
        return
    if call.fault is not None and call.fault.kind == "reset":
        status = None  # the connection is reset: nothing reaches the client
    state.ledger.append(
        ts=time.time(),
        method=call.method,
        endpoint=call.endpoint,
        path=call.path,
        hashtag_id=call.hashtag_id,
        cursor=call.cursor,
        offset=call.offset,
        limit=call.limit,
        max_credits=call.max_credits,
        status=status,
        error_type=etype,
        fault=call.fault.kind if call.fault is not None else None,
        records=records,
        credits_charged=credits,
        balance_after=state.balance,
        request_id=call.request_id,
        headers=call.header_pairs,
    )
