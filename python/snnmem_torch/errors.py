"""Errors with the same shape as the Swift `ProfileError`: file, place, layer, problem, fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class ProfileError(Exception):
    """Something wrong with a profile file, or a profile this package cannot run.

    Printed as `file:line:col: error: layer 'path': problem` and a `fix:` line, exactly as the
    Swift loader prints its errors, so that both tools name the same place.
    """

    file: str
    problem: str
    fix: str
    line: Optional[int] = None
    column: Optional[int] = None
    layer_path: Optional[str] = None

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}:{self.column}"
        layer = f"layer '{self.layer_path}': " if self.layer_path else ""
        return f"{place}: error: {layer}{self.problem}\n  fix: {self.fix}"


class UnsupportedProfile(ProfileError):
    """A valid profile that PyTorch + SpikingJelly cannot express here (a T-RevSNN-only layer outside a
    `trevsnn:` network, a LIF with tau = 1, ...)."""


class UsageError(Exception):
    """A bad command-line value (exit code 2)."""
