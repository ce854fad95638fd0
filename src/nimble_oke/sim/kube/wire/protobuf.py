"""Kubernetes' protobuf wire format for the simulated API server, driven by the schema in
:mod:`.k8s_schema` (generated from k8s.io/api and k8s.io/apimachinery).

A body is the magic ``k8s\\0`` followed by a ``runtime.Unknown`` message whose ``typeMeta``
names the kind and whose ``raw`` holds the object's own message. Objects are decoded into
the same dicts the JSON API carries, so everything behind the HTTP layer stays JSON-shaped:

- Go fields that are not pointers are always on the wire, zero or not; a zero value of such
  a field with ``omitempty`` is dropped, as the Go JSON encoder would drop it. Pointer
  fields keep their zero values (``replicas: 0``, ``automountServiceAccountToken: false``).
- Kubernetes' special messages map to their JSON forms: Quantity (string), IntOrString
  (int or string), Time (RFC 3339, seconds), MicroTime (microseconds), Duration (Go
  duration string), RawExtension and FieldsV1 (embedded JSON), list wrappers such as
  ``Verbs`` (a JSON list), ``bytes`` (base64, like ``Secret.data``), and inline embedded
  structs (flattened into their parent).
"""

from __future__ import annotations

import base64
import calendar
import json
import re
import struct
import time
from collections.abc import Iterator
from typing import Any

from .k8s_schema import SCHEMA

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_RUNTIME = "k8s.io.apimachinery.pkg.runtime."
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
TIME = _META + "Time"
MICRO_TIME = _META + "MicroTime"
DURATION = _META + "Duration"
FIELDS_V1 = _META + "FieldsV1"
RAW_EXTENSION = _RUNTIME + "RawExtension"
UNKNOWN = _RUNTIME + "Unknown"
TYPE_META = _RUNTIME + "TypeMeta"

_INTS = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64"}
_VARINTS = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool"}

Field = tuple[int, str, str, str, str | None]


class ProtobufError(ValueError):
    """The bytes are not a valid encoding of the expected message."""


# --- which message a kind is -------------------------------------------------------------------
def _package(group: str) -> str:
    if not group:
        return "core"
    if group == "rbac.authorization.k8s.io":
        return "rbac"
    return group.removesuffix(".k8s.io")


def message_for(api_version: str, kind: str) -> str | None:
    """The protobuf message of ``apiVersion``/``kind``, or None when it has none (custom
    resources, Table)."""
    group, _, version = api_version.rpartition("/")
    candidate = f"k8s.io.api.{_package(group)}.{version}.{kind}"
    if candidate in SCHEMA:
        return candidate
    if group in ("", "meta.k8s.io") and _META + kind in SCHEMA:
        return _META + kind  # Status, DeleteOptions, WatchEvent, APIResourceList ...
    return None


def supports(api_version: str, kind: str) -> bool:
    return message_for(api_version, kind) is not None


# --- low level ---------------------------------------------------------------------------------
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("unexpected EOF")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("proto: integer overflow")


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, raw value) of every field on the wire."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("proto: illegal tag 0")
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("unexpected EOF")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"proto: illegal wireType {wire}")
        if pos > len(data):
            raise ProtobufError("unexpected EOF")
        yield number, wire, value


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(typ: str, wire: int, raw: Any) -> Any:
    if typ == "string":
        return bytes(raw).decode("utf-8")
    if typ == "bytes":
        return base64.b64encode(bytes(raw)).decode()
    if typ == "bool":
        return bool(raw)
    if typ in ("int32", "int64"):
        return _signed(raw, 32 if typ == "int32" else 64)
    if typ in ("sint32", "sint64"):
        return (raw >> 1) ^ -(raw & 1)
    if typ == "double":
        return struct.unpack("<d", raw)[0]
    if typ == "float":
        return struct.unpack("<f", raw)[0]
    if typ in ("fixed32", "fixed64"):
        return int.from_bytes(raw, "little")
    return raw  # uint32 / uint64


def _packed(typ: str, raw: bytes) -> list[Any]:
    values: list[Any] = []
    pos = 0
    while pos < len(raw):
        if typ in ("double", "fixed64"):
            values.append(_scalar(typ, 1, raw[pos : pos + 8]))
            pos += 8
        elif typ in ("float", "fixed32"):
            values.append(_scalar(typ, 5, raw[pos : pos + 4]))
            pos += 4
        else:
            value, pos = _varint(raw, pos)
            values.append(_scalar(typ, 0, value))
    return values


# --- Go formats --------------------------------------------------------------------------------
def _rfc3339(seconds: int, micros: int | None = None) -> str:
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{micros:06d}Z" if micros is not None else text + "Z"


_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(text: str) -> tuple[int, int]:
    """(unix seconds, nanoseconds) of an RFC 3339 timestamp."""
    match = _RFC3339.match(text)
    if not match:
        raise ProtobufError(f"parsing time {json.dumps(text)} as RFC3339")
    day, clock, fraction, zone = match.groups()
    seconds = calendar.timegm(time.strptime(f"{day}T{clock}", "%Y-%m-%dT%H:%M:%S"))
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((fraction or ".0")[1:].ljust(9, "0")[:9])
    return seconds, nanos


_UNITS = (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6))


def go_duration(nanos: int) -> str:
    """Go's ``time.Duration.String``: ``1h2m3.5s``, ``150ms``, ``0s``."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if n >= size:
                return sign + _trim(n, size) + unit
    hours, rest = divmod(n, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return sign + out + _trim(rest, 10**9) + "s"


def _trim(value: int, size: int) -> str:
    whole, frac = divmod(value, size)
    if not frac:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9}


def parse_go_duration(text: str) -> int:
    body = text.lstrip("+-")
    if body == "0":
        return 0
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ProtobufError(f'time: invalid duration "{text}"')
    units = {**_UNIT_NS, "m": 60 * 10**9, "h": 3600 * 10**9}
    total = sum(round(float(n) * units[u]) for n, u in parts)
    return -total if text.startswith("-") else total


# --- decoding ----------------------------------------------------------------------------------
def _is_zero(value: Any) -> bool:
    return value in ("", 0, False) and not isinstance(value, dict | list)


def _special_decode(msg: str, data: bytes) -> tuple[bool, Any]:
    if msg == QUANTITY:
        values = {n: v for n, _, v in _fields(data)}
        return True, bytes(values.get(1, b"")).decode() or "0"
    if msg == INT_OR_STRING:
        values = {n: v for n, _, v in _fields(data)}
        if values.get(1, 0) == 1:
            return True, bytes(values.get(3, b"")).decode()
        return True, _signed(values.get(2, 0), 32)
    if msg in (TIME, MICRO_TIME):
        if not data:
            return True, None
        values = {n: v for n, _, v in _fields(data)}
        seconds = _signed(values.get(1, 0), 64)
        if msg == TIME:
            return True, _rfc3339(seconds)
        return True, _rfc3339(seconds, _signed(values.get(2, 0), 32) // 1000)
    if msg == DURATION:
        values = {n: v for n, _, v in _fields(data)}
        return True, go_duration(_signed(values.get(1, 0), 64))
    if msg in (FIELDS_V1, RAW_EXTENSION):
        values = {n: v for n, _, v in _fields(data)}
        raw = bytes(values.get(1, b""))
        return True, _embedded(raw)
    return False, None


def _embedded(raw: bytes) -> Any:
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return decode(raw)[2]
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ProtobufError(f"embedded object is not JSON: {exc}") from exc


def _decode_value(typ: str, wire: int, raw: Any) -> Any:
    if typ in SCHEMA or typ.startswith(("k8s.io.", "com.")):
        return decode_message(typ, bytes(raw))
    return _scalar(typ, wire, raw)


def _map_entry(key_type: str, value_type: str, data: bytes) -> tuple[Any, Any]:
    key: Any = "" if key_type == "string" else 0
    value: Any = None
    for number, wire, raw in _fields(data):
        if number == 1:
            key = _scalar(key_type, wire, raw)
        elif number == 2:
            value = _decode_value(value_type, wire, raw)
    if value is None and value_type == "string":
        value = ""
    return key, value


def decode_message(msg: str, data: bytes) -> Any:
    """The JSON value of ``data`` encoded as message ``msg``."""
    special, value = _special_decode(msg, data)
    if special:
        return value
    if msg not in SCHEMA:
        raise ProtobufError(f"no protobuf schema for {msg}")
    wrapper, fields = SCHEMA[msg]
    by_number = {f[0]: f for f in fields}
    out: dict[str, Any] = {}
    for number, wire, raw in _fields(data):
        field = by_number.get(number)
        if field is None:
            continue  # an unknown field: skipped, as proto2 decoders do
        _, name, typ, flags, key_type = field
        if key_type is not None:
            k, v = _map_entry(key_type, typ, bytes(raw))
            out.setdefault(name, {})[k] = v
        elif "r" in flags:
            if wire == 2 and typ in _INTS | {"bool", "double", "float"}:
                out.setdefault(name, []).extend(_packed(typ, bytes(raw)))
            else:
                out.setdefault(name, []).append(_decode_value(typ, wire, raw))
        else:
            out[name] = _decode_value(typ, wire, raw)
    if wrapper:
        return next(iter(out.values()), [])
    return _json_shape(out, fields)


def _json_shape(out: dict[str, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
    """Drop what the Go JSON encoder would omit; flatten inline embedded structs."""
    for _, name, typ, flags, key_type in fields:
        if name not in out:
            continue
        value = out[name]
        if "i" in flags and isinstance(value, dict):
            del out[name]
            for k, v in value.items():
                out.setdefault(k, v)
        elif value is None or (
            key_type is None
            and "r" not in flags
            and "p" not in flags
            and "o" in flags
            and (_is_zero(value) or (typ == INT_OR_STRING and value in (0, "")))
        ):
            del out[name]
    return out


def decode(body: bytes) -> tuple[str, str, dict[str, Any]]:
    """(apiVersion, kind, object) of a ``k8s\\0``-prefixed body."""
    if not body.startswith(MAGIC):
        raise ProtobufError(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    api_version = kind = ""
    raw = b""
    for number, _, value in _fields(body[len(MAGIC) :]):
        if number == 1:
            for n, _, v in _fields(bytes(value)):
                if n == 1:
                    api_version = bytes(v).decode()
                elif n == 2:
                    kind = bytes(v).decode()
        elif number == 2:
            raw = bytes(value)
    msg = message_for(api_version, kind)
    if msg is None:
        raise ProtobufError(f"no kind {kind!r} is registered for version {api_version!r}")
    obj = decode_message(msg, raw)
    if not isinstance(obj, dict):
        raise ProtobufError(f"{kind} is not an object")
    return api_version, kind, {"apiVersion": api_version, "kind": kind, **obj}


# --- encoding ----------------------------------------------------------------------------------
def _put_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _put_varint(number << 3 | wire)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _put_varint(len(payload)) + payload


def _encode_scalar(number: int, typ: str, value: Any) -> bytes:
    if typ == "string":
        if not isinstance(value, str):
            raise ProtobufError(f"expected a string, got {value!r}")
        return _length_delimited(number, value.encode())
    if typ == "bytes":
        return _length_delimited(number, base64.b64decode(value))
    if typ == "bool":
        return _key(number, 0) + _put_varint(1 if value else 0)
    if typ in ("double", "float"):
        fmt = "<d" if typ == "double" else "<f"
        return _key(number, 1 if typ == "double" else 5) + struct.pack(fmt, float(value))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtobufError(f"expected an integer, got {value!r}")
    if typ in ("sint32", "sint64"):
        return _key(number, 0) + _put_varint((int(value) << 1) ^ (int(value) >> 63))
    return _key(number, 0) + _put_varint(int(value))


def _special_encode(msg: str, value: Any) -> bytes | None:
    if msg == QUANTITY:
        return _encode_scalar(1, "string", str(value))
    if msg == INT_OR_STRING:
        if isinstance(value, str):
            return _key(1, 0) + _put_varint(1) + _encode_scalar(3, "string", value)
        return _key(1, 0) + _put_varint(0) + _encode_scalar(2, "int32", int(value))
    if msg in (TIME, MICRO_TIME):
        seconds, nanos = parse_rfc3339(str(value))
        out = _encode_scalar(1, "int64", seconds)
        if msg == MICRO_TIME and nanos:
            out += _encode_scalar(2, "int32", nanos // 1000 * 1000)
        return out
    if msg == DURATION:
        return _encode_scalar(1, "int64", parse_go_duration(str(value)))
    if msg in (FIELDS_V1, RAW_EXTENSION):
        raw = json.dumps(value, separators=(",", ":")).encode()
        return _length_delimited(1, raw)
    return None


def encode_message(msg: str, value: Any) -> bytes:
    special = _special_encode(msg, value)
    if special is not None:
        return special
    if msg not in SCHEMA:
        raise ProtobufError(f"no protobuf schema for {msg}")
    wrapper, fields = SCHEMA[msg]
    if wrapper:
        value = {fields[0][1]: value}
    if not isinstance(value, dict):
        raise ProtobufError(f"expected an object for {msg}, got {value!r}")
    out = bytearray()
    for number, name, typ, flags, key_type in sorted(fields):
        if "i" in flags:
            inline = _inline_part(typ, value)
            out += _length_delimited(number, encode_message(typ, inline))
            continue
        if name not in value or value[name] is None:
            continue
        out += _encode_field(number, typ, flags, key_type, value[name])
    return bytes(out)


def _inline_part(msg: str, value: dict[str, Any]) -> dict[str, Any]:
    names: set[str] = set()
    for _, name, typ, flags, _key_type in SCHEMA[msg][1]:
        if "i" in flags:
            names |= set(_inline_part(typ, value))
        names.add(name)
    return {k: v for k, v in value.items() if k in names}


def _encode_field(number: int, typ: str, flags: str, key_type: str | None, value: Any) -> bytes:
    is_message = typ in SCHEMA or typ.startswith("k8s.io.")
    if key_type is not None:
        if not isinstance(value, dict):
            raise ProtobufError(f"expected a map, got {value!r}")
        out = bytearray()
        for k, v in sorted(value.items()):
            entry = _encode_scalar(1, key_type, k)
            if v is not None:
                entry += _encode_one(2, typ, is_message, v)
            out += _length_delimited(number, entry)
        return bytes(out)
    if "r" in flags:
        if not isinstance(value, list):
            raise ProtobufError(f"expected a list, got {value!r}")
        return b"".join(_encode_one(number, typ, is_message, item) for item in value)
    return _encode_one(number, typ, is_message, value)


def _encode_one(number: int, typ: str, is_message: bool, value: Any) -> bytes:
    if is_message:
        return _length_delimited(number, encode_message(typ, value))
    return _encode_scalar(number, typ, value)


def encode(obj: dict[str, Any]) -> bytes:
    """``k8s\\0`` + ``runtime.Unknown`` of a JSON-shaped object with apiVersion and kind."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    msg = message_for(api_version, kind)
    if msg is None:
        raise ProtobufError(f"no protobuf schema for {api_version}/{kind}")
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    type_meta = _encode_scalar(1, "string", api_version) + _encode_scalar(2, "string", kind)
    unknown = (
        _length_delimited(1, type_meta)
        + _length_delimited(2, encode_message(msg, body))
        + _length_delimited(3, b"")
        + _length_delimited(4, b"")
    )
    return MAGIC + unknown


def watch_frame(api_version: str, event_type: str, obj: dict[str, Any]) -> bytes:
    """One frame of a protobuf watch stream: a 4-byte big-endian length, then a
    ``WatchEvent`` envelope (in the watched resource's group version, as the real server
    encodes it) whose object is the object's own envelope."""
    event = _encode_scalar(1, "string", event_type) + _length_delimited(
        2, _length_delimited(1, encode(obj))
    )
    type_meta = _encode_scalar(1, "string", api_version) + _encode_scalar(2, "string", "WatchEvent")
    payload = (
        MAGIC
        + _length_delimited(1, type_meta)
        + _length_delimited(2, event)
        + _length_delimited(3, b"")
        + _length_delimited(4, b"")
    )
    return len(payload).to_bytes(4, "big") + payload
