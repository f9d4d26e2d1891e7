"""Wire compatibility of the two generated codes: Java writes, Python reads, and back.

Every table of docs/protocol.md is built once by the Java classes (a test-scope tool,
jars/flclient/src/test/java/com/mindspore/flclient/WireTool.java, run from its source
by `java`) and once by the Python module generated from the same schema; each side
reads what the other wrote. Every field gets a distinct non-default value from one
rule both sides implement (a CRC32 of "Table.field#salt"), nested tables and table
vectors included, so a field written in one slot and read from another, a dropped
field or a mistyped one fails the table it belongs to.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest

from pyflclient._fbs import cipher_generated, fl_job_generated
from pyflclient.client.jvm import find_jars

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "docs" / "protocol.md"
SCHEMAS = [ROOT / "schema" / "fl_job.fbs", ROOT / "schema" / "cipher.fbs"]
WIRE_TOOL = ROOT / "jars" / "flclient" / "src" / "test" / "java" / "com" / "mindspore" / "flclient" / "WireTool.java"
MODULES = (fl_job_generated, cipher_generated)


def enum_sizes() -> dict[str, int]:
    sizes = {}
    for fbs in SCHEMAS:
        for name, body in re.findall(r"enum\s+(\w+)\s*:\s*\w+\s*\{([^}]*)\}", fbs.read_text()):
            sizes[name] = len([v for v in body.split(",") if v.strip()])
    return sizes


def protocol_tables() -> dict[str, list[tuple[str, str]]]:
    """{table: [(field, spec type)]} from the field tables of docs/protocol.md, in wire order."""
    enums = enum_sizes()
    rows = re.findall(r"^\| ([A-Z]\w+) \| (\w+:[^|]+) \|$", PROTOCOL.read_text(), flags=re.M)
    names = {t for t, _ in rows}
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, fields in rows:
        out = []
        for item in fields.split(", "):
            field, typ = item.strip().split(":", 1)
            typ = typ.split("=")[0]
            vec = typ.startswith("[")
            base = typ.strip("[]")
            if base in enums:
                base = f"enum:{enums[base]}"
            elif base in names:
                base = f"table:{base}"
            elif base not in ("int", "float", "bool", "string", "ubyte", "byte"):
                raise AssertionError(f"{table}.{field}: type {typ} unknown to this test")
            out.append((field, f"[{base}]" if vec else base))
        tables[table] = out
    return tables


TABLES = protocol_tables()


# -- the value rule (WireTool.java has the same) ----------------------------------------

def crc(key: str) -> int:
    return zlib.crc32(key.encode())


def expected(table: str, salt: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, typ in TABLES[table]:
        key = f"{table}.{field}#{salt}"
        h = crc(key)
        if typ == "int":
            out[field] = h % 200001 - 100000
        elif typ == "float":
            out[field] = (h % 2001 - 1000) / 8.0
        elif typ == "bool":
            out[field] = True
        elif typ == "string":
            out[field] = key
        elif typ.startswith("enum:"):
            out[field] = 1 + h % (int(typ[5:]) - 1)
        elif typ == "[float]":
            out[field] = [(h % 97) / 4.0, -1.5, 3.25]
        elif typ == "[ubyte]":
            out[field] = [h % 256, 0, 255, 7]
        elif typ == "[byte]":
            out[field] = [h % 256 - 128, -128, 127, 7]
        elif typ == "[int]":
            out[field] = [h % 200001 - 100000, -1, 2147483647]
        elif typ.startswith("[enum:"):
            out[field] = [1 + h % (int(typ[6:-1]) - 1), 0]
        elif typ == "[string]":
            out[field] = [key + "/0", key + "/1"]
        elif typ.startswith("[table:"):
            out[field] = [expected(typ[7:-1], 0), expected(typ[7:-1], 1)]
        elif typ.startswith("table:"):
            out[field] = expected(typ[6:], salt)
    return out


# -- the Python half ----------------------------------------------------------------------

def upper(field: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in field.split("_"))


def gen(name: str) -> Any:
    for module in MODULES:
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"{name} is not in the generated Python code")


def build(b: flatbuffers.Builder, table: str, salt: int = 0) -> int:
    values = expected(table, salt)
    offsets: dict[str, int] = {}
    for field, typ in TABLES[table]:
        v = values[field]
        if typ == "string":
            offsets[field] = b.CreateString(v)
        elif typ == "[float]":
            offsets[field] = b.CreateNumpyVector(np.array(v, dtype=np.float32))
        elif typ == "[ubyte]":
            offsets[field] = b.CreateNumpyVector(np.array(v, dtype=np.uint8))
        elif typ == "[byte]":
            offsets[field] = b.CreateNumpyVector(np.array(v, dtype=np.int8))
        elif typ == "[int]":
            offsets[field] = b.CreateNumpyVector(np.array(v, dtype=np.int32))
        elif typ.startswith("[enum:"):
            offsets[field] = b.CreateNumpyVector(np.array(v, dtype=np.int8))
        elif typ == "[string]" or typ.startswith("[table:"):
            elems = [b.CreateString(s) for s in v] if typ == "[string]" else \
                [build(b, typ[7:-1], i) for i in range(len(v))]
            gen(f"{table}Start{upper(field)}Vector")(b, len(elems))
            for off in reversed(elems):
                b.PrependUOffsetTRelative(off)
            offsets[field] = b.EndVector()
        elif typ.startswith("table:"):
            offsets[field] = build(b, typ[6:], salt)
    gen(f"{table}Start")(b)
    for field, typ in TABLES[table]:
        add = gen(f"{table}Add{upper(field)}")
        add(b, offsets[field] if field in offsets else values[field])
    return gen(f"{table}End")(b)


def read(table: str, obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, typ in TABLES[table]:
        acc = upper(field)
        if typ.startswith("["):
            n = getattr(obj, acc + "Length")()
            items = [getattr(obj, acc)(j) for j in range(n)]
            if typ.startswith("[table:"):
                out[field] = [read(typ[7:-1], x) for x in items]
            else:
                out[field] = [x.decode() if isinstance(x, bytes) else x for x in items]
        else:
            v = getattr(obj, acc)()
            if typ.startswith("table:"):
                out[field] = None if v is None else read(typ[6:], v)
            else:
                out[field] = v.decode() if isinstance(v, bytes) else v
    return out


# -- running the Java half ----------------------------------------------------------------

@pytest.fixture(scope="module")
def java(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(spec file, work folder): the field list of every table, as WireTool.java reads it."""
    work = tmp_path_factory.mktemp("wire")
    spec = work / "spec.txt"
    spec.write_text("".join(f"{t} {f} {typ}\n" for t, fields in TABLES.items() for f, typ in fields))
    return spec, work


def run_tool(spec: Path, mode: str, folder: Path) -> str:
    client_jar, _ = find_jars()
    assert shutil.which("java"), "java (JDK 17) is needed"
    proc = subprocess.run(["java", "-cp", str(client_jar), str(WIRE_TOOL), mode, str(spec), str(folder)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def java_written(java: tuple[Path, Path]) -> Path:
    spec, work = java
    out = work / "from_java"
    out.mkdir()
    run_tool(spec, "write", out)
    return out


@pytest.fixture(scope="module")
def read_by_java(java: tuple[Path, Path]) -> dict[str, Any]:
    spec, work = java
    folder = work / "from_python"
    folder.mkdir()
    for table in TABLES:
        b = flatbuffers.Builder(256)
        b.Finish(build(b, table))
        (folder / f"{table}.bin").write_bytes(bytes(b.Output()))
    return json.loads(run_tool(spec, "read", folder))


def test_the_protocol_page_lists_every_table_of_the_schema() -> None:
    declared = set()
    for fbs in SCHEMAS:
        declared |= set(re.findall(r"^table\s+(\w+)", fbs.read_text(), flags=re.M))
    assert set(TABLES) == declared
    # r1.6's 25 (with SendReconstructSecret and ReconstructSecret), MindSpore Federated's compression tables
    # (CompressFeatureMap, UnsupervisedEvalItem(s)), r1.6's async and pushMetrics request/reply pairs
    assert len(TABLES) == 34


@pytest.mark.parametrize("table", sorted(TABLES))
def test_a_buffer_written_in_java_reads_in_python(java_written: Path, table: str) -> None:
    buf = (java_written / f"{table}.bin").read_bytes()
    obj = gen(table).GetRootAs(buf, 0)
    assert read(table, obj) == expected(table)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_a_buffer_written_in_python_reads_in_java(read_by_java: dict[str, Any], table: str) -> None:
    assert read_by_java[table] == expected(table)



def test_the_java_client_recognises_the_servers_words_for_an_upload_it_already_holds() -> None:
    """A second upload of one fl_id in one iteration is refused with RequestError and Upload.DUPLICATE's
    words; the Java client (FLMessages.ALREADY_UPLOADED) takes them as "the server has my upload"."""
    from pyflclient.server.store import Upload

    source = (ROOT / "jars" / "flclient" / "src" / "main" / "java" / "com" / "mindspore" / "flclient"
              / "FLMessages.java").read_text()
    found = re.search(r'static final String ALREADY_UPLOADED = "([^"]+)";', source)
    assert found, "FLMessages.ALREADY_UPLOADED is gone"
    assert found.group(1) in Upload.DUPLICATE.value
