"""The runs filter: `tag:baseline arch:lstm state:finished val<1.6 shakespeare`, the runs browser's and
`rnnlab runs ls --filter`'s one language.

Every term must hold. `FIELD:TEXT` matches one field (tag: a whole tag; arch, task, state, name, id, sweep:
a part of it); `KEY OP NUMBER` compares a number (val: the best validation loss; step: the steps done; OP one
of < <= > >= =); any other term is text found in the id, arch, task, state, name, tags or note. Case never
matters. A comparison whose number does not parse is a problem to show, and matches nothing.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field

FIELDS = ("tag", "arch", "task", "state", "name", "id", "sweep")
NUMBERS = {"val": "best_val", "best": "best_val", "step": "step", "steps": "step"}
OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "=": operator.eq}
COMPARISON = re.compile(r"(?P<key>[a-z_]+)(?P<op><=|>=|<|>|=)(?P<value>.*)")


@dataclass
class RunFilter:
    fields: list[tuple[str, str]] = field(default_factory=list)  # (field, text), lowercased
    comparisons: list[tuple[str, object, float]] = field(default_factory=list)  # (summary attribute, op, number)
    words: list[str] = field(default_factory=list)  # plain text, lowercased
    problems: list[str] = field(default_factory=list)  # terms that look like comparisons but do not parse

    @property
    def empty(self) -> bool:
        return not (self.fields or self.comparisons or self.words or self.problems)

    def matches(self, run) -> bool:
        """Does a RunSummary (or anything with its attributes) pass every term?"""
        if self.problems:
            return False
        tags = [str(tag).lower() for tag in getattr(run, "tags", ())]
        for name, text in self.fields:
            if name == "tag":
                if text not in tags:
                    return False
            elif text not in str(getattr(run, name, "") or "").lower():
                return False
        for attribute, op, number in self.comparisons:
            value = getattr(run, attribute, None)
            if not isinstance(value, (int, float)) or not op(value, number):
                return False
        haystack = " ".join([str(getattr(run, key, "") or "") for key in ("id", "arch", "task", "state", "name")]
                            + tags + [str(getattr(run, "note", "") or "")]).lower()
        return all(word in haystack for word in self.words)


def parse(text: str) -> RunFilter:
    parsed = RunFilter()
    for term in text.lower().split():
        name, colon, rest = term.partition(":")
        comparison = COMPARISON.fullmatch(term)
        if colon and name in FIELDS and rest:
            parsed.fields.append((name, rest))
        elif comparison and comparison["key"] in NUMBERS:
            try:
                number = float(comparison["value"])
            except ValueError:
                parsed.problems.append(f"{term}: {comparison['value'] or '(nothing)'} is not a number")
                continue
            parsed.comparisons.append((NUMBERS[comparison["key"]], OPS[comparison["op"]], number))
        else:
            parsed.words.append(term)
    return parsed
