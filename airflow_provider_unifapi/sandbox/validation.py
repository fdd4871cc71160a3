"""Validation helpers shared by the settings modules (admin/CLI input is JSON: check types strictly)."""

from __future__ import annotations

from typing import Any


class SettingsError(ValueError):
    """Invalid settings (bad type, range, or an unknown key)."""


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` if it is an integer (not a bool) within bounds, else :class:`SettingsError`.

    :param name: the setting, for the message.
    :param value: the input.
    :param minimum: smallest value allowed, if any.
    :param maximum: largest value allowed, if any.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{name}: must be an integer")
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}: must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name}: must be <= {maximum}")
    return value


def check_float(name: str, value: Any, low: float, high: float) -> float:
    """``value`` as a float if it is a number within ``[low, high]``, else :class:`SettingsError`.

    :param name: the setting, for the message.
    :param value: the input.
    :param low: smallest value allowed.
    :param high: largest value allowed.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{name}: must be a number")
    if not low <= value <= high:
        raise SettingsError(f"{name}: must be between {low} and {high}")
    return float(value)
