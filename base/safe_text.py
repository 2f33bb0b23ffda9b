"""Text from outside (the CRM, a request) made safe to store, log and print on a terminal.

A CRM's free text reaches operators' terminals (`sote-risk alerts report`): an escape sequence
in it could clear the screen, retitle the window or hide lines, and a bidi override could make
text read differently than it is stored. Pure functions.
"""

from __future__ import annotations

import re
import unicodedata

# ESC-introduced sequences whole (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, two-byte `ESC x`),
# so no parameters are left behind as stray text; lone control characters are dropped after.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")


def printable(text: str) -> str:
    """`text` without terminal escapes, control or format characters (C0, C1, bidi overrides,
    zero-width marks); line breaks and tabs become one space."""
    text = _LINE_BREAKS.sub(" ", _ESCAPES.sub("", text))
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
