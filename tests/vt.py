"""A small terminal emulator for tests: what a full-screen program leaves on an 80x24 screen.

It understands what rich (and most full-screen programs) send: printable text
(UTF-8, one cell a character), carriage return, line feed, backspace, tab;
CSI cursor moves (CUP ``H``/``f``, ``A`` ``B`` ``C`` ``D`` ``G`` ``d``), erase
(``J``, ``K``), the alternate screen (``?1049h``/``l``: a screen of its own,
the main one restored when it ends); it skips SGR (colors), other private
modes, OSC strings and two-byte escapes.  Colors and attributes are not kept:
tests read the text.
"""

from __future__ import annotations

import codecs
import re

_CSI = re.compile(r"\x1b\[([?>=]?)([0-9;]*)([ -/]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


class Screen:
    def __init__(self, columns: int = 80, rows: int = 24) -> None:
        self.columns, self.rows = columns, rows
        self.cells = self._blank()
        self.row = self.col = 0
        self.alternate = False
        self._main: list[list[str]] | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""  # an escape sequence cut by the end of a read

    def _blank(self) -> list[list[str]]:
        return [[" "] * self.columns for _ in range(self.rows)]

    def lines(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.cells]

    def text(self) -> str:
        return "\n".join(self.lines())

    def feed(self, data: bytes) -> None:
        text = self._pending + self._decoder.decode(data)
        self._pending = ""
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                match = _CSI.match(text, i) or _OSC.match(text, i)
                if match is None:
                    if len(text) - i < 32 and not re.match(r"\x1b[^\[\]]", text[i:]):
                        self._pending = text[i:]  # incomplete: wait for the rest
                        return
                    i += 2  # a two-byte escape (ESC 7, ESC =, ...): skipped
                    if text[i - 1:i] in ("(", ")"):
                        i += 1  # a charset designation takes one more
                    continue
                if match.re is _CSI:
                    self._csi(match.group(1), match.group(2), match.group(4))
                i = match.end()
                continue
            self._char(ch)
            i += 1

    def _char(self, ch: str) -> None:
        if ch == "\r":
            self.col = 0
        elif ch == "\n":
            self.col = min(self.col, self.columns - 1)  # a move ends a pending wrap, as in xterm
            self._line_feed()
        elif ch == "\b":
            self.col = max(0, self.col - 1)
        elif ch == "\t":
            self.col = min(self.columns - 1, (self.col // 8 + 1) * 8)
        elif ch >= " ":
            if self.col >= self.columns:  # the pending wrap of the last column
                self.col = 0
                self._line_feed()
            self.cells[self.row][self.col] = ch
            self.col += 1

    def _line_feed(self) -> None:
        if self.row == self.rows - 1:
            self.cells.pop(0)
            self.cells.append([" "] * self.columns)
        else:
            self.row += 1

    def _csi(self, private: str, params: str, final: str) -> None:
        args = [int(p) if p else 0 for p in params.split(";")] if params else []
        first = args[0] if args else 0
        n = max(1, first)
        if private == "?":
            if 1049 in args or 47 in args or 1047 in args:
                self._switch(final == "h")
            return
        if private:
            return
        if final in "Hf":
            self.row = min(self.rows - 1, max(1, first) - 1)
            self.col = min(self.columns - 1, max(1, args[1] if len(args) > 1 else 1) - 1)
        elif final == "A":
            self.row = max(0, self.row - n)
        elif final == "B":
            self.row = min(self.rows - 1, self.row + n)
        elif final == "C":
            self.col = min(self.columns - 1, self.col + n)
        elif final == "D":
            self.col = max(0, self.col - n)
        elif final == "G":
            self.col = min(self.columns - 1, n - 1)
        elif final == "d":
            self.row = min(self.rows - 1, n - 1)
        elif final == "J":
            self._erase_display(first)
        elif final == "K":
            row = self.cells[self.row]
            start, end = {0: (self.col, self.columns), 1: (0, self.col + 1), 2: (0, self.columns)}.get(first, (0, 0))
            row[start:end] = [" "] * (end - start)

    def _erase_display(self, how: int) -> None:
        if how in (2, 3):
            self.cells = self._blank()
            return
        rows = range(self.row + 1, self.rows) if how == 0 else range(0, self.row)
        for r in rows:
            self.cells[r] = [" "] * self.columns
        row = self.cells[self.row]
        if how == 0:
            row[self.col:] = [" "] * (self.columns - self.col)
        else:
            row[:self.col + 1] = [" "] * (self.col + 1)

    def _switch(self, alternate: bool) -> None:
        if alternate == self.alternate:
            return
        self.alternate = alternate
        if alternate:
            self._main, self.cells = self.cells, self._blank()
        else:
            self.cells, self._main = self._main or self._blank(), None
