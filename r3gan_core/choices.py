"""Validation of named choices, shared by every module that takes a string option."""

from __future__ import annotations

import math

from collections.abc import Iterable


def require_choice(what: str, value: object, choices: Iterable[object]) -> None:
    """Raise ValueError naming `what` and the valid choices if `value` is not one of them."""
    choices = tuple(choices)
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {what} {value!r}; valid choices: {valid}")


def require_positive(what: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise ValueError if `value` is not a finite number > 0 (or >= 0 when allow_zero)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{what} must be {bound}, got {value!r}")


class SettingError(ValueError):
    """One setting that cannot be used: `setting` is the TrainConfig field, `problem` what is wrong with its value."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"{setting} {problem}")
        self.setting, self.problem = setting, problem

    def as_flag(self) -> str:
        """The message with the setting written as its command-line flag."""
        return f"{flag_name(self.setting)} {self.problem}"


def flag_name(setting: str) -> str:
    """The `r3gan train` flag of a TrainConfig field."""
    return "--" + setting.replace("_", "-")
