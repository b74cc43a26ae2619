"""User strings (run names, symbols, gene names, file names) made safe to print: one line, no control
or bidi characters (shown as escapes), and escaped for rich markup where rich renders them."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(value) -> str:
    """`value` as one line with control, format and bidi characters shown as escapes."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode(), str(value))


def markup(value) -> str:
    """`value` made printable and escaped for rich markup (a name like '[/]' stays text)."""
    from rich.markup import escape

    return escape(printable(value))


def markdown(value) -> str:
    """`value` made printable and inert in markdown: no HTML, no table breaks, no emphasis or links."""
    import html

    text = html.escape(printable(value), quote=False)
    return "".join("\\" + c if c in "\\`*_{}[]()#+!|~" else c for c in text)


def console():
    """The rich Console every table is printed on: the terminal's width, or 120 columns when output is
    not a terminal (rich assumes 80, which wraps the tables)."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 120)
