"""From HTML forms to the admin API's own request bodies, and back to messages per field.

A form posts strings; the admin API's pydantic bodies take typed camelCase JSON. These helpers
turn one into the other, so that the dashboard validates through the very same models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData


def text(form: FormData, name: str) -> str:
    """A text input, trimmed; "" when it is missing or is a file."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    """A text input, or None when it was left blank (so that the body omits it)."""
    return text(form, name) or None


def whole_number(form: FormData, name: str) -> int | str:
    """An integer input as an int, or the raw text so that validation names the field."""
    raw = text(form, name)
    return int(raw) if re.fullmatch(r"-?\d{1,12}", raw) else raw


def words(value: str) -> list[str]:
    """Scopes typed separated by spaces, commas or lines."""
    return [part for part in re.split(r"[\s,]+", value) if part]


def lines(value: str) -> list[str]:
    """Values typed one per line (or separated by commas), each trimmed."""
    return [part.strip() for part in re.split(r"[\n,]+", value) if part.strip()]


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "is not valid"))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error.get("type") == "int_type":
        return "Enter a whole number."
    if error.get("type") == "missing":
        return "This field is required."
    return message.replace("Input should be", "Must be")


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The first message for each field, keyed by the body's camelCase name ("" for errors of
    the whole form)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = error.get("loc") or ()
        key = str(loc[0]) if loc else ""
        message = _message(dict(error))
        if len(loc) > 1 and isinstance(loc[1], int):
            message = f"Line {loc[1] + 1}: {message}"
        errors.setdefault(key, message)
    return errors
