"""Parsing untrusted YAML and JSON text within bounds (pure: text in, data or an error out).

YAML is bounded *before* it is built: the nesting depth on the event stream (which the
parser produces without recursion) and the number of values once aliases are expanded (an
alias bomb — "billion laughs" — stops at the bound instead of exhausting memory), and
duplicate keys are refused (YAML says keys are unique; PyYAML silently keeps the last).
JSON: the same depth and duplicate-key rules. File reading is in :mod:`nimble_oke.user_files`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nimble_oke.errors import ConfigError

ErrorFactory = Callable[[str], Exception]


@dataclass(frozen=True)
class Limits:
    """Bounds for one kind of input (a real ``nimble.yaml`` is ~2 KB, depth 3)."""

    max_bytes: int = 1 << 20
    max_depth: int = 32
    max_values: int = 20_000  # scalars + collections, aliases expanded


CONFIG_LIMITS = Limits()
VALUES_LIMITS = Limits(max_bytes=1 << 20, max_depth=64, max_values=100_000)
# Benchmark results carry per-request records: bigger, but still bounded.
RESULTS_LIMITS = Limits(max_bytes=256 << 20, max_depth=64, max_values=50_000_000)
# One NIMBLE_* environment variable's value (a scalar or a short list).
ENV_LIMITS = Limits(max_bytes=4096, max_depth=4, max_values=1000)


# --- YAML ----------------------------------------------------------------------------------


def load_yaml(
    text: str,
    source: str,
    *,
    limits: Limits = CONFIG_LIMITS,
    error: ErrorFactory = ConfigError,
    syntax_error: ErrorFactory | None = None,
) -> Any:
    """Parse one YAML document within ``limits``; duplicate keys refused. Every failure is
    ``error`` with the line and column when the parser knows them; text that is not YAML
    at all raises ``syntax_error`` instead when given (a caller that then takes the text
    as a plain string), while a bound crossed is always ``error``."""
    import yaml

    if len(text) > limits.max_bytes:
        raise error(f"{source}: longer than {limits.max_bytes:,} characters")
    not_yaml = syntax_error or error

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_event_depth(text, source, limits, loader_cls, error)
        loader = loader_cls(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_node_graph(node, source, limits, error)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "syntax error"
        if "nesting depth" in problem:  # libyaml's own bound, met while scanning ahead
            line = f" at line {mark.line + 1}" if mark else ""
            raise error(f"{source}: nested deeper than {limits.max_depth} levels{line}") from None
        raise not_yaml(f"{source}: not valid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise not_yaml(f"{source}: not valid YAML: {_one_line(str(exc))}") from None
    except (ValueError, OverflowError, TypeError) as exc:
        # a constructor refusing a scalar (e.g. an integer of more than 4300 digits)
        raise error(f"{source}: a value cannot be read: {_scalar_problem(exc)}") from None


def _check_event_depth(
    text: str, source: str, limits: Limits, loader_cls: Any, error: ErrorFactory
) -> None:
    """Bound nesting on the event stream (built without recursion), before composing."""
    import yaml

    depth = 0
    for events, event in enumerate(yaml.parse(text, Loader=loader_cls), start=1):
        if events > 2 * limits.max_values + 8:
            raise error(f"{source}: more than {limits.max_values:,} values; this is not a config")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.max_depth:
                mark = event.start_mark
                where = f" at line {mark.line + 1}" if mark is not None else ""
                raise error(f"{source}: nested deeper than {limits.max_depth} levels{where}")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_node_graph(root: Any, source: str, limits: Limits, error: ErrorFactory) -> None:
    """Walk the document as it will be built (aliases expanded): bound its size and depth
    (a self-referencing alias only deepens), and refuse duplicate keys."""
    import yaml

    seen_mappings: set[int] = set()
    stack: list[tuple[Any, int]] = [(root, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > limits.max_values:
            raise error(
                f"{source}: expands to more than {limits.max_values:,} values "
                "(aliases that repeat each other?); refused before building it"
            )
        if depth > limits.max_depth:
            raise error(
                f"{source}: nested deeper than {limits.max_depth} levels once aliases are expanded"
            )
        if isinstance(node, yaml.MappingNode):
            if id(node) not in seen_mappings:
                seen_mappings.add(id(node))
                _refuse_duplicate_keys(node, source, error)
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def _refuse_duplicate_keys(node: Any, source: str, error: ErrorFactory) -> None:
    import yaml

    first: dict[tuple[str, str], Any] = {}
    for key, _value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        ident = (key.tag, key.value)
        if ident in first:
            line = key.start_mark.line + 1
            earlier = first[ident].start_mark.line + 1
            raise error(
                f"{source}: duplicate key '{_short_key(key.value)}' at line {line} "
                f"(first at line {earlier}); keep one"
            )
        first[ident] = key


# --- JSON ----------------------------------------------------------------------------------


def load_json(
    text: str, source: str, *, limits: Limits = RESULTS_LIMITS, error: ErrorFactory = ConfigError
) -> Any:
    """Parse JSON within the depth bound, duplicate keys refused; failures are ``error``."""
    _check_json_depth(text, source, limits, error)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise error(f"{source}: duplicate key '{_short_key(key)}' in a JSON object")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise error(
            f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{source}: not valid JSON: {_one_line(str(exc))}") from None


def _check_json_depth(text: str, source: str, limits: Limits, error: ErrorFactory) -> None:
    """Bound ``[``/``{`` nesting outside strings (the json module recurses per level)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limits.max_depth:
                raise error(f"{source}: nested deeper than {limits.max_depth} levels")
        elif char in "]}":
            depth -= 1


# --- words ---------------------------------------------------------------------------------


def _scalar_problem(exc: Exception) -> str:
    text = str(exc)
    if "integer string conversion" in text:
        return "a number has more than 4300 digits"
    return _one_line(text)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _short_key(key: str) -> str:
    return key if len(key) <= 60 else key[:57] + "..."
