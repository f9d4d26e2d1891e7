"""A FlatBuffers verifier for Python, driven by the project's own ``.fbs`` schemas.

The Python ``flatbuffers`` runtime reads buffers without any bounds check: a
truncated or hostile body makes the generated accessors raise deep inside
``struct.unpack_from`` or, worse, return garbage read from some other part of the
buffer. The C++ runtime has a ``Verifier`` for this; Python has none, so this module
is one. It checks, before anything reads the buffer, everything the generated code
would touch: the root offset, each table's vtable, every present field's offset
and size, strings (length, terminator, UTF-8), vectors (length against the buffer
end) and nested tables, recursively, with a depth and a table budget.

The field tables come from parsing ``schema/*.fbs`` (shipped as package data in
``pyflclient/_fbs/``), so there is no second hand-written copy of the wire layout.
The parser understands the subset of the FlatBuffers IDL the project uses:
``namespace``, ``enum``, ``table`` (scalar, enum, string, table and vector
fields, defaults, ``(required)`` / ``(deprecated)`` attributes), ``root_type``,
``file_identifier``, ``file_extension``; anything else (structs, unions,
includes) is refused with its name so that nobody silently relies on it.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

__all__ = ["VerificationError", "SchemaError", "Schema", "Field", "Table", "load_schema", "verify"]

#: byte width of each scalar type of the IDL (aliases included)
SCALAR_SIZES: dict[str, int] = {
    "bool": 1, "byte": 1, "ubyte": 1, "int8": 1, "uint8": 1,
    "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
    "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4,
    "long": 8, "ulong": 8, "int64": 8, "uint64": 8, "double": 8, "float64": 8,
}
_UOFFSET = 4
_MAX_BUFFER = 2**31 - 1
_MAX_PADDING = 7  # builders align objects to at most 8 bytes


class SchemaError(ValueError):
    """The .fbs text uses something this parser does not understand."""


class VerificationError(ValueError):
    """A buffer is not a valid FlatBuffer of the expected root table; says where and why."""


@dataclass(frozen=True)
class Field:
    """One table field: ``kind`` is scalar | string | table | vector; vectors carry ``element``."""

    name: str
    slot: int
    kind: str
    size: int = 0               # scalars: byte width
    ref: str | None = None      # table name (kind table, or vector of tables)
    element: str | None = None  # vectors: scalar | string | table
    element_size: int = 0       # vectors of scalars
    required: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Schema:
    tables: dict[str, Table]
    enums: dict[str, str]  # enum name -> underlying scalar type
    file_identifiers: dict[str, str] = field(default_factory=dict)  # root_type -> its file_identifier

    def table(self, name: str) -> Table:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r} in the schema (known: {', '.join(sorted(self.tables))})") from None


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_DECL = re.compile(r"\b(namespace|enum|table|struct|union|include|attribute|root_type|file_identifier|"
                   r"file_extension|rpc_service)\b")
_BLOCK = re.compile(r"(table|struct|union|enum)\s+(\w+)\s*(?::\s*(\w+))?\s*(\([^)]*\))?\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"^\s*(\w+)\s*:\s*(\[\s*[\w.]+\s*\]|[\w.]+)\s*(?:=\s*([^()]+?))?\s*(\(([^)]*)\))?\s*$", re.S)


def parse_fbs(texts: Iterable[str]) -> Schema:
    """Parse .fbs sources (all files of one namespace set) into field tables."""
    raw_tables: dict[str, list[tuple[str, str, str]]] = {}
    enums: dict[str, str] = {}
    identifiers: dict[str, str] = {}
    for text in texts:
        text = _COMMENT.sub("", text)
        for block in _BLOCK.finditer(text):
            kind, name, base, _attrs, body = block.groups()
            if kind in ("struct", "union"):
                raise SchemaError(f"{kind} {name}: structs and unions are not supported by pyflclient.wire.verify")
            if kind == "enum":
                if base not in SCALAR_SIZES:
                    raise SchemaError(f"enum {name} needs an integer underlying type, found {base!r}")
                enums[name] = base
                continue
            fields = []
            for decl in body.split(";"):
                if not decl.strip():
                    continue
                m = _FIELD.match(decl)
                if m is None:
                    raise SchemaError(f"table {name}: cannot parse field declaration {decl.strip()!r}")
                fields.append((m.group(1), re.sub(r"\s", "", m.group(2)), m.group(5) or ""))
            raw_tables[name] = fields
        rest = _BLOCK.sub("", text)
        root = re.search(r"\broot_type\s+([\w.]+)\s*;", rest)
        ident = re.search(r'\bfile_identifier\s+"([^"]*)"\s*;', rest)
        if root and ident:
            identifiers[root.group(1).rsplit(".", 1)[-1]] = ident.group(1)
        for m in _DECL.finditer(rest):
            if m.group(1) in ("struct", "union", "include", "rpc_service"):
                raise SchemaError(f"'{m.group(1)}' is not supported by pyflclient.wire.verify")

    def short(type_name: str) -> str:
        return type_name.rsplit(".", 1)[-1]

    def classify(type_name: str, table: str, field: str) -> tuple[str, int, str | None]:
        type_name = short(type_name)
        if type_name in SCALAR_SIZES:
            return "scalar", SCALAR_SIZES[type_name], None
        if type_name in enums:
            return "scalar", SCALAR_SIZES[enums[type_name]], None
        if type_name == "string":
            return "string", 0, None
        if type_name in raw_tables:
            return "table", 0, type_name
        raise SchemaError(f"{table}.{field}: unknown type {type_name!r}")

    tables: dict[str, Table] = {}
    for tname, raw in raw_tables.items():
        fields = []
        for slot, (fname, ftype, attrs) in enumerate(raw):
            required = "required" in attrs
            if ftype.startswith("["):
                ekind, esize, eref = classify(ftype[1:-1], tname, fname)
                fields.append(Field(fname, slot, "vector", ref=eref, element=ekind, element_size=esize,
                                    required=required))
            else:
                kind, size, ref = classify(ftype, tname, fname)
                fields.append(Field(fname, slot, kind, size=size, ref=ref, required=required))
        tables[tname] = Table(tname, tuple(fields))
    return Schema(tables, enums, identifiers)


def schema_dir() -> Path:
    """Where the .fbs files are: the package copy (installed) or the repo's schema/ (source tree)."""
    packaged = Path(__file__).resolve().parent.parent / "_fbs"
    if any(packaged.glob("*.fbs")):
        return packaged
    source = Path(__file__).resolve().parent.parent.parent / "schema"
    if any(source.glob("*.fbs")):
        return source
    raise FileNotFoundError(
        f"no .fbs schema files in {packaged} or {source}: run `python schema/generate.py --python pyflclient/_fbs`")


def schema_table(name: str, key: str, what: str) -> list[dict]:
    """The rows under ``key`` of a JSON table of ``schema/`` (``ops.json``, ``client_parameters.json``),
    from the same folder as the .fbs files; ``what`` names it in the error."""
    import json

    path = schema_dir() / name
    try:
        return json.loads(path.read_text())[key]
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(f"{what} {path} cannot be read ({exc}); reinstall pyflclient (`pip install .`)") from exc


@lru_cache(maxsize=None)
def load_schema(*names: str) -> Schema:
    """The parsed schema of the given .fbs files (default: the two wire schemas)."""
    names = names or ("fl_job.fbs", "cipher.fbs")
    folder = schema_dir()
    return parse_fbs((folder / n).read_text() for n in names)


class _Verifier:
    def __init__(self, buf: bytes | bytearray | memoryview, schema: Schema, max_depth: int, max_tables: int,
                 exact: bool):
        self.buf = bytes(buf) if not isinstance(buf, bytes) else buf
        self.exact = exact
        self.covered: list[tuple[int, int]] = [(0, 4)]  # byte ranges reached from the root
        self.n = len(self.buf)
        self.schema = schema
        self.max_depth = max_depth
        self.tables_left = max_tables

    def fail(self, where: str, why: str) -> VerificationError:
        return VerificationError(f"{where}: {why}")

    def u32(self, pos: int, where: str) -> int:
        if pos < 0 or pos + 4 > self.n:
            raise self.fail(where, f"4 bytes at {pos} are past the end of the {self.n}-byte buffer")
        return struct.unpack_from("<I", self.buf, pos)[0]

    def offset_target(self, pos: int, where: str) -> int:
        """Follow the uoffset stored at pos; the target must lie inside the buffer."""
        if pos % _UOFFSET:
            raise self.fail(where, f"offset at {pos} is not 4-byte aligned")
        off = self.u32(pos, where)
        if off == 0 or pos + off + 4 > self.n:
            raise self.fail(where, f"offset {off} at {pos} points outside the {self.n}-byte buffer")
        return pos + off

    def table(self, pos: int, table: Table, where: str, depth: int) -> None:
        if depth > self.max_depth:
            raise self.fail(where, f"tables nested deeper than {self.max_depth}")
        self.tables_left -= 1
        if self.tables_left < 0:
            raise self.fail(where, "too many tables in one buffer")
        if pos % 4:
            raise self.fail(where, f"table {table.name} at {pos} is not 4-byte aligned")
        if pos + 4 > self.n:
            raise self.fail(where, f"table {table.name} at {pos} is past the end of the buffer")
        vtable = pos - struct.unpack_from("<i", self.buf, pos)[0]
        if vtable < 0 or vtable % 2 or vtable + 4 > self.n:
            raise self.fail(where, f"vtable of {table.name} at {vtable} is outside the buffer or misaligned")
        vsize, tsize = struct.unpack_from("<HH", self.buf, vtable)
        if vsize < 4 or vsize % 2 or vtable + vsize > self.n:
            raise self.fail(where, f"vtable of {table.name} has a bad size {vsize}")
        if tsize < 4 or pos + tsize > self.n:
            raise self.fail(where, f"table {table.name} claims {tsize} bytes, past the end of the buffer")
        if self.exact:
            self.covered += [(vtable, vtable + vsize), (pos, pos + tsize)]
            for slot in range(len(table.fields), (vsize - 4) // 2):
                if struct.unpack_from("<H", self.buf, vtable + 4 + 2 * slot)[0]:
                    raise self.fail(where, f"field slot {slot} is not in table {table.name} of the schema")
        for spec in table.fields:
            entry = 4 + 2 * spec.slot
            voff = struct.unpack_from("<H", self.buf, vtable + entry)[0] if entry < vsize else 0
            fwhere = f"{where}.{spec.name}"
            if voff == 0:
                if spec.required:
                    raise self.fail(fwhere, "required field is missing")
                continue
            width = spec.size if spec.kind == "scalar" else _UOFFSET
            if voff < 4 or voff + width > tsize:
                raise self.fail(fwhere, f"field offset {voff} (+{width} bytes) is outside its {tsize}-byte table")
            fpos = pos + voff
            if spec.kind == "scalar":
                if fpos % width:
                    raise self.fail(fwhere, f"{width}-byte scalar at {fpos} is misaligned")
                continue
            target = self.offset_target(fpos, fwhere)
            if spec.kind == "string":
                self.string(target, fwhere)
            elif spec.kind == "table":
                self.table(target, self.schema.table(spec.ref or ""), fwhere, depth + 1)
            else:
                self.vector(target, spec, fwhere, depth)

    def string(self, pos: int, where: str) -> None:
        if pos % 4:
            raise self.fail(where, f"string at {pos} is not 4-byte aligned")
        length = self.u32(pos, where)
        end = pos + 4 + length
        if end + 1 > self.n:
            raise self.fail(where, f"string of {length} bytes runs past the end of the buffer")
        if self.buf[end] != 0:
            raise self.fail(where, "string is not NUL-terminated")
        self.covered.append((pos, end + 1))
        try:
            self.buf[pos + 4:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(where, f"string is not valid UTF-8 ({exc.reason})") from None

    def vector(self, pos: int, field: Field, where: str, depth: int) -> None:
        if pos % 4:
            raise self.fail(where, f"vector at {pos} is not 4-byte aligned")
        count = self.u32(pos, where)
        width = field.element_size if field.element == "scalar" else _UOFFSET
        start = pos + 4
        if start + count * width > self.n:
            raise self.fail(where, f"vector of {count} × {width} bytes runs past the end of the buffer")
        self.covered.append((pos, start + count * width))
        if field.element == "scalar":
            return
        if count > self.tables_left and field.element == "table":
            raise self.fail(where, f"vector of {count} tables is more than this verifier accepts")
        for i in range(count):
            target = self.offset_target(start + 4 * i, f"{where}[{i}]")
            if field.element == "string":
                self.string(target, f"{where}[{i}]")
            else:
                self.table(target, self.schema.table(field.ref or ""), f"{where}[{i}]", depth + 1)


    def check_coverage(self) -> None:
        """Every byte must belong to an object reached from the root, but alignment padding."""
        end = 0
        for start, stop in sorted(self.covered):
            if start - end > _MAX_PADDING:
                raise self.fail("buffer", f"{start - end} bytes at {end} belong to no field of the root table")
            end = max(end, stop)
        if self.n - end > _MAX_PADDING:
            raise self.fail("buffer", f"{self.n - end} trailing bytes at {end} belong to no field of the root table")


def verify(buf: bytes | bytearray | memoryview, root_table: str, *, schema: Schema | None = None,
           max_depth: int = 64, max_tables: int = 100_000, exact: bool = False) -> None:
    """Check that ``buf`` is a well-formed FlatBuffer whose root is ``root_table``.

    Raises :class:`VerificationError` naming the field path and the problem; returns
    None when every read the generated code can make stays inside the buffer.
    Buffers without a file identifier are expected (the r1.6 wire format has none),
    and one with an identifier also verifies: the root offset alone locates the root.

    ``exact=True`` adds what the C++ verifier leaves out and a server needs: FlatBuffers
    carry no type tag, so a valid buffer of *another* table often passes as this one
    (a ``RequestUpdateModel`` reads as a ``RequestFLJob`` whose ``data_size`` is an
    offset). Exact mode refuses fields the schema does not have and any run of bytes
    longer than alignment padding that no field of the root reaches, which a builder
    never produces but a wrong table or spliced garbage does.
    """
    schema = schema or load_schema()
    table = schema.table(root_table)
    v = _Verifier(buf, schema, max_depth, max_tables, exact)
    if v.n < 8:
        raise VerificationError(f"{root_table}: a buffer of {v.n} bytes is too short to be a FlatBuffer")
    if v.n > _MAX_BUFFER:
        raise VerificationError(f"{root_table}: a buffer of {v.n} bytes is larger than FlatBuffers allows")
    root = v.offset_target(0, root_table)
    v.table(root, table, root_table, 0)
    if exact:
        v.check_coverage()
