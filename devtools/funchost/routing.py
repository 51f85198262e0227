"""ASP.NET-style route templates, as httpTrigger `route` uses them.

Supported: literal segments, `{name}`, optional `{name?}` and `{name=default}` (trailing),
catch-all `{*rest}`, parameters mixed with literals inside a segment (`{file}.{ext}`), and
inline constraints `{id:int}`. The common constraints are enforced (a non-number does not
match `{id:int}`, so the request gets 404 as on Azure); any other constraint is accepted
without checking. Matching is case-insensitive, like the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_CONSTRAINT_PATTERNS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
}
_PARAMETER = re.compile(
    r"^(?P<star>\*{1,2})?(?P<name>\w+)(?P<constraints>(?::[^:?=]+)*)(?P<optional>\?)?(?:=(?P<default>.*))?$"
)
_TOKEN = re.compile(r"\{([^{}]*)\}")

# Rank of a segment when several routes match: lower wins (ASP.NET precedence).
_LITERAL, _CONSTRAINED, _COMPLEX, _PLAIN, _OPTIONAL, _CATCH_ALL = range(6)


@dataclass(frozen=True)
class _Parameter:
    name: str
    pattern: str
    optional: bool
    default: str | None
    catch_all: bool
    constrained: bool


@dataclass(frozen=True)
class RouteTemplate:
    template: str
    regex: re.Pattern[str]
    groups: tuple[tuple[str, str], ...]  # (regex group, parameter name)
    defaults: tuple[tuple[str, str], ...]
    precedence: tuple[int, ...]

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Route values for a raw (still %-encoded) request path, or None."""
        found = self.regex.match(raw_path)
        if found is None:
            return None
        values = dict(self.defaults)
        for group, name in self.groups:
            if found[group] is not None:
                values[name] = unquote(found[group])
        return values


def compile_route(template: str) -> RouteTemplate:
    segments = [segment for segment in template.strip("/").split("/") if segment]
    pieces: list[str] = []
    groups: list[tuple[str, str]] = []
    defaults: list[tuple[str, str]] = []
    precedence: list[int] = []
    for segment in segments:
        regex, rank = _segment(segment, template, groups, defaults)
        pieces.append(regex)
        precedence.append(rank)
    body = "".join(pieces)
    return RouteTemplate(
        template, re.compile(f"^{body}/?$", re.IGNORECASE), tuple(groups), tuple(defaults), tuple(precedence)
    )


def _segment(
    segment: str, template: str, groups: list[tuple[str, str]], defaults: list[tuple[str, str]]
) -> tuple[str, int]:
    """Regex for `/segment` and its precedence rank."""
    parts = _TOKEN.split(segment)  # literal, parameter, literal, parameter, ..., literal
    if len(parts) == 1:
        return "/" + re.escape(segment), _LITERAL
    regex = ""
    parameters: list[_Parameter] = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
            continue
        parameter = _parameter(part, template)
        group = f"g{len(groups)}"
        groups.append((group, parameter.name))
        if parameter.default is not None:
            defaults.append((parameter.name, parameter.default))
        parameters.append(parameter)
        regex += f"(?P<{group}>{parameter.pattern})"
    if len(parts) == 3 and not parts[0] and not parts[2]:
        only = parameters[0]
        if only.catch_all:
            return f"(?:/{regex})?", _CATCH_ALL
        if only.optional:
            return f"(?:/{regex})?", _OPTIONAL
        return "/" + regex, _CONSTRAINED if only.constrained else _PLAIN
    return "/" + regex, _COMPLEX


def _parameter(text: str, template: str) -> _Parameter:
    found = _PARAMETER.match(text)
    if found is None:
        raise ValueError(f"route {template!r}: cannot parse parameter {{{text}}}")
    constraints = [c for c in found["constraints"].split(":") if c]
    catch_all = bool(found["star"])
    pattern = ".*" if catch_all else "[^/]+"
    for constraint in constraints:
        pattern = _CONSTRAINT_PATTERNS.get(constraint.lower(), pattern)
    optional = bool(found["optional"]) or found["default"] is not None
    return _Parameter(found["name"], pattern, optional, found["default"], catch_all, bool(constraints))
