"""Regular expressions a caller supplies (searchDirectory `pattern`, listDirectory `filter`, globs),
run with a time budget so that one call cannot stall the executor.

The plugin hands these to JavaScript's RegExp, a backtracking engine: `^(a+)+$` on a 40-character
name never finishes. Here they run on the `regex` package, whose syntax is Python's (the same as
JavaScript's for everything a search pattern normally uses, lookarounds and backreferences
included) and whose matcher takes a timeout. All matches of one call share one budget
(REGEX_BUDGET_S); when it is spent the call fails with "Pattern ... took too long".
"""

from __future__ import annotations

import math
import re
import time

import regex

from .handlers import ToolError

REGEX_BUDGET_S = 1.0  # the time one call's user patterns may take, over every name they test

MAX_PATTERN_CHARS = 1000
# Compiling expands counted repeats: ((a{1000}){1000}){1000} would take minutes before any timeout
# applies. Bounds multiplied over the whole pattern (nested or not, to stay simple) stay under this.
MAX_REPEAT_PRODUCT = 100_000
_COUNTED = re.compile(r"\{(\d+)(?:,(\d*))?\}")


class PatternError(ToolError):
    """A pattern that does not compile (listDirectory then reads it as a glob, as the plugin does)."""

    def __init__(self, message: str):
        super().__init__(message, "E_ARG_VALUE")


class BoundedPattern:
    """A compiled user pattern; its searches spend the current call's regex budget (ex.regex_deadline)."""

    def __init__(self, ex, pattern: str, *, ignore_case: bool = False):
        if len(pattern) > MAX_PATTERN_CHARS:
            raise ToolError(f"Invalid pattern: longer than {MAX_PATTERN_CHARS} characters", "E_ARG_VALUE")
        if (
            math.prod(max(int(low), int(high or 0)) or 1 for low, high in _COUNTED.findall(pattern))
            > MAX_REPEAT_PRODUCT
        ):
            raise ToolError(
                f"Invalid pattern: its counted repeats ({{n,m}}) multiply past {MAX_REPEAT_PRODUCT:,}", "E_ARG_VALUE"
            )
        try:
            self._rx = regex.compile(pattern, regex.IGNORECASE if ignore_case else 0)
        except (regex.error, RecursionError, OverflowError, ValueError) as exc:
            raise PatternError(f"Invalid pattern: {exc}") from None
        self.pattern, self._ex = pattern, ex

    def search(self, text: str) -> bool:
        left = self._ex.regex_deadline() - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            # concurrent=True releases the GIL while matching, so a server's other threads keep running
            return self._rx.search(text, timeout=left, concurrent=True) is not None
        except TimeoutError:
            raise ToolError(
                f"Pattern {self.pattern[:80]!r} took too long (over {REGEX_BUDGET_S:g} s for this call); simplify it",
                "E_ARG_VALUE",
            ) from None


def glob_pattern(ex, glob: str) -> BoundedPattern:
    """A path glob (the plugin's globToRegex): `**/` any folders, `**` anything, `*` and `?` within a name."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(regex.escape(glob[i]))
            i += 1
    return BoundedPattern(ex, r"\A" + "".join(out) + r"\Z")
