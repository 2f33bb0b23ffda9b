"""Customer groups of the cost view: a filter over codes, age and segment, named or given ad hoc.

A group is every customer of the year who meets all it states (each part optional):
- `codes`: an event in the year with one of the codes, or a code under one of them in the
  catalogue (data_contracts/codes.csv): "ICD10/I50" takes ICD10/I50.9, "ICD10/" every ICD-10 code.
  A pattern that matches no catalogue code is refused (a typo must not read as "nobody").
- `age`: age in completed years at the end of the year (birth month precision: everyone born in
  year B is Y - B at the end of year Y), `from`..`to` inclusive, `to` open when left out.
- `segment`: in that segment (vocabulary/problems.yaml) at the end of any month of the year.

Named groups are data (costs/groups.yaml), checked strictly at load. Bad input raises
`CostInputError`, which names the option at fault (`--age`, `--codes`, ...), the value and why.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from base.errors import SoteRiskError
from data_contracts.catalogue import known_codes
from vocabulary import Words, vocabulary

MAX_AGE = 130
NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
AGE = re.compile(r"^\s*(\d{1,3})\s*(?:-\s*(\d{1,3})?|\+)\s*$")


class CostInputError(SoteRiskError):
    """An option of the cost view that cannot be used: `option` (without dashes), the value, why."""

    def __init__(self, option: str, value: object, why: str) -> None:
        self.option, self.value, self.why = option, value, why
        super().__init__(f"--{option} {str(value)!r}: {why}")

    def detail(self) -> str:
        """The same without the command line's dashes (for a page's query parameter)."""
        return f"{self.option} {str(self.value)!r}: {self.why}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AgeRange(_Strict):
    low: int = Field(0, ge=0, le=MAX_AGE, alias="from")
    high: int | None = Field(None, ge=0, le=MAX_AGE, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> "AgeRange":
        if self.high is not None and self.high < self.low:
            raise ValueError(f"from {self.low} is above to {self.high}")
        return self

    def text(self) -> str:
        return f"{self.low}-{self.high}" if self.high is not None else f"{self.low}-"


class Group(_Strict):
    """A customer group (see the module's docstring). `name` is the preset's, or "custom"."""

    name: str = "custom"
    label: Words | None = None
    codes: tuple[str, ...] = ()
    age: AgeRange | None = None
    segment: str | None = None

    def describe(self, lang: str = "en") -> str:
        """The group in words: its label, or what it filters on."""
        if self.label is not None:
            return self.label(lang)  # type: ignore[arg-type]
        fi = lang == "fi"
        parts = []
        if self.codes:
            parts.append(("koodi " if fi else "code ") + ", ".join(self.codes))
        if self.age is not None:
            low, high = self.age.low, self.age.high
            if high is None:
                parts.append(f"{low} vuotta täyttäneet" if fi else f"aged {low} or over")
            else:
                parts.append(f"{low}–{high}-vuotiaat" if fi else f"aged {low}-{high}")
        if self.segment is not None:
            parts.append(vocabulary().segment(self.segment).name(lang))  # type: ignore[arg-type]
        return "; ".join(parts) if parts else ("kaikki asiakkaat" if fi else "all customers")


class _Presets(_Strict):
    groups: dict[str, Group]


@lru_cache(maxsize=1)
def presets() -> dict[str, Group]:
    """The named groups of costs/groups.yaml (validated once per process: names, codes, segments)."""
    text = resources.files("costs").joinpath("groups.yaml").read_text(encoding="utf-8")
    try:
        loaded = _Presets.model_validate(yaml.safe_load(text))
    except ValidationError as error:
        raise SoteRiskError(f"costs/groups.yaml: {error}") from None
    out = {}
    for name, group in loaded.groups.items():
        if not NAME.match(name):
            raise SoteRiskError(f"costs/groups.yaml: group name {name!r} is not lower-case words joined by hyphens")
        if group.label is None:
            raise SoteRiskError(f"costs/groups.yaml: group {name!r} has no label")
        try:
            matching_codes(group.codes)
            if group.segment is not None:
                check_segment(group.segment)
        except CostInputError as error:
            raise SoteRiskError(f"costs/groups.yaml: group {name!r}: {error.why}") from None
        out[name] = group.model_copy(update={"name": name})
    return out


def preset(name: str) -> Group:
    found = presets().get(str(name).strip())
    if found is None:
        raise CostInputError("group", name, f"no such group; named groups: {', '.join(presets())}")
    return found


def matching_codes(patterns: tuple[str, ...] | list[str], option: str = "codes") -> tuple[str, ...]:
    """Every catalogue code the patterns take (sorted); a pattern that takes none is refused."""
    known = sorted(known_codes())
    found: set[str] = set()
    for pattern in patterns:
        taken = [code for code in known if _takes(pattern, code)]
        if not taken:
            namespace = pattern.split("/", 1)[0]
            near = [code for code in known if code.startswith(f"{namespace}/")]
            hint = f" (codes of {namespace}: {', '.join(near[:12])}{', ...' if len(near) > 12 else ''})" if near else \
                f" (namespaces: {', '.join(sorted({code.split('/', 1)[0] for code in known if '/' in code}))})"
            raise CostInputError(option, pattern, f"no code in data_contracts/codes.csv is or is under it{hint}")
        found.update(taken)
    return tuple(sorted(found))


def _takes(pattern: str, code: str) -> bool:
    if not pattern or code == pattern:
        return code == pattern and bool(pattern)
    if pattern.endswith(("/", ".")):
        return code.startswith(pattern)
    return code.startswith(pattern) and code[len(pattern)] in "./"


def parse_codes(text: str | None) -> tuple[str, ...]:
    """'ICD10/I50, ICD10/J44' -> ('ICD10/I50', 'ICD10/J44'), every pattern checked."""
    if text is None:
        return ()
    patterns = tuple(part.strip() for part in str(text).split(",") if part.strip())
    if not patterns:
        raise CostInputError("codes", text, "give one or more codes separated by commas, e.g. ICD10/I50")
    matching_codes(patterns)
    return patterns


def parse_age(text: str | None) -> AgeRange | None:
    """'50-65' (inclusive), '75-' or '75+' (75 and over) -> AgeRange."""
    if text is None:
        return None
    found = AGE.match(str(text))
    if found is None:
        raise CostInputError("age", text, "give an age range in whole years as FROM-TO, e.g. 50-65 (or 75- for 75 and over)")
    low, high = int(found.group(1)), (int(found.group(2)) if found.group(2) is not None else None)
    if max(low, high or 0) > MAX_AGE:
        raise CostInputError("age", text, f"ages run from 0 to {MAX_AGE}")
    if high is not None and high < low:
        raise CostInputError("age", text, f"the range is empty ({low} is above {high})")
    return AgeRange(low=low, high=high)


def check_segment(name: str | None) -> str | None:
    if name is None:
        return None
    segments = vocabulary().segments
    if name not in segments:
        raise CostInputError("segment", name, f"no such segment; segments: {', '.join(segments)}")
    return name


def make_group(group: str | None = None, codes: str | None = None, age: str | None = None, segment: str | None = None) -> Group | None:
    """The group the options name: a preset (`group`), or an ad hoc filter; None when none is given.
    A preset and ad hoc parts together are refused (which one would win is not obvious)."""
    given = {name: value for name, value in (("codes", codes), ("age", age), ("segment", segment)) if value is not None}
    if group is not None:
        if given:
            first = next(iter(given))
            raise CostInputError(first, given[first], f"give either --group or --codes/--age/--segment, not both (--group {group})")
        return preset(group)
    if not given:
        return None
    fields: dict[str, Any] = {"codes": parse_codes(codes), "age": parse_age(age), "segment": check_segment(segment)}
    return Group(**fields)
