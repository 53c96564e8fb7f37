"""The textual pipeline syntax (parsing only; the registry turns it into passes).

    pipeline := step ("," step)*              (at least one step: empty text is an error)
    step     := NAME [ "(" [arg ("," arg)*] ")" ]
    arg      := [KEY "="] value                 (positional args fill fields in order)
    value    := number | true | false | none | word | "quoted string" | dict | list
    dict     := "{" [key ":" value ("," key ":" value)*] "}"
    list     := "[" [value ("," value)*] "]"

A *word* is any run of characters other than whitespace and ``,:=(){}[]"'`` so that
dotted/slashed names need no quotes: ``widths={conv1.out:48,layer1.0.conv1.out:32}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from symbiote.errors import PipelineSyntaxError

_DELIMS = set(',:=(){}[]"\'') 


@dataclass(frozen=True)
class Step:
    name: str
    args: tuple[Any, ...]               # positional values
    kwargs: tuple[tuple[str, Any], ...]  # (key, value) in order
    pos: int                             # offset of the name in the text


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def error(self, msg: str, at: int | None = None) -> PipelineSyntaxError:
        at = self.i if at is None else at
        return PipelineSyntaxError(f"{msg} at column {at + 1} of pipeline {self.s!r}")

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            got = self.peek() or "end of text"
            raise self.error(f"expected {ch!r} but found {got!r}")
        self.i += 1

    def word(self) -> str:
        self.ws()
        j = self.i
        while j < len(self.s) and not self.s[j].isspace() and self.s[j] not in _DELIMS:
            j += 1
        if j == self.i:
            got = self.s[self.i] if self.i < len(self.s) else "end of text"
            raise self.error(f"expected a name or value but found {got!r}")
        w, self.i = self.s[self.i:j], j
        return w

    def quoted(self) -> str:
        q = self.s[self.i]
        j = self.s.find(q, self.i + 1)
        if j < 0:
            raise self.error("unterminated string")
        out, self.i = self.s[self.i + 1:j], j + 1
        return out

    def key(self) -> str:
        return self.quoted() if self.peek() in "\"'" else self.word()

    def value(self) -> Any:
        c = self.peek()
        if c == "{":
            self.i += 1
            d: dict[Any, Any] = {}
            if self.peek() == "}":
                self.i += 1
                return d
            while True:
                at = self.i
                k = self.key()
                if k in d:
                    raise self.error(f"duplicate key {k!r}", at)
                self.expect(":")
                d[k] = self.value()
                if self.peek() == ",":
                    self.i += 1
                    continue
                self.expect("}")
                return d
        if c == "[":
            self.i += 1
            items: list[Any] = []
            if self.peek() == "]":
                self.i += 1
                return items
            while True:
                items.append(self.value())
                if self.peek() == ",":
                    self.i += 1
                    continue
                self.expect("]")
                return items
        if c in "\"'":
            return self.quoted()
        return convert_word(self.word())

    def step(self) -> Step:
        pos = (self.ws(), self.i)[1]
        name = self.word()
        args: list[Any] = []
        kwargs: list[tuple[str, Any]] = []
        if self.peek() == "(":
            self.i += 1
            if self.peek() == ")":
                self.i += 1
                return Step(name, (), (), pos)
            while True:
                save = self.i
                key = None
                if self.peek() not in "{[\"'":
                    w = self.word()
                    if self.peek() == "=":
                        self.i += 1
                        key = w
                    else:
                        self.i = save
                if key is None:
                    if kwargs:
                        raise self.error("positional argument after a keyword argument", save)
                    args.append(self.value())
                else:
                    if any(k == key for k, _ in kwargs):
                        raise self.error(f"argument {key!r} given twice", save)
                    kwargs.append((key, self.value()))
                if self.peek() == ",":
                    self.i += 1
                    continue
                self.expect(")")
                break
        return Step(name, tuple(args), tuple(kwargs), pos)

    def pipeline(self) -> list[Step]:
        steps: list[Step] = []
        if not self.peek():
            raise self.error("empty pipeline: name at least one pass (see `symbiote passes`)", 0)
        while True:
            steps.append(self.step())
            c = self.peek()
            if not c:
                return steps
            if c != ",":
                raise self.error(f"expected ',' between passes but found {c!r}")
            self.i += 1


def convert_word(w: str) -> Any:
    low = w.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low in ("none", "null"):
        return None
    try:
        return int(w)
    except ValueError:
        pass
    try:
        return float(w)
    except ValueError:
        return w


def parse_steps(text: str) -> list[Step]:
    """Parse pipeline text into steps (names and raw argument values)."""
    return _Parser(text).pipeline()


def format_value(v: Any) -> str:
    """Inverse of the value syntax."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        plain = v and not any(c.isspace() or c in _DELIMS for c in v) and convert_word(v) == v
        return v if plain else '"' + v + '"'
    if isinstance(v, dict):
        return "{" + ",".join(f"{format_value(str(k))}:{format_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(format_value(x) for x in v) + "]"
    if v is None:
        return "none"
    return str(v)
