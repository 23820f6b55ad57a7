"""Hand-built .xlsx files for roster tests: zipfile and hand-written XML, so that damaged and
hostile workbooks (bad XML, bad deflate data, entities, huge declared sizes) can be made."""

from __future__ import annotations

import io
import struct
import zipfile
from xml.sax.saxutils import escape

from openpyxl.utils import get_column_letter

HEADER = ["序号", "姓名", "性别", "出生年月", "职务", "所属镇街", "村/社区", "手机号码", "身份证号"]
ROW = ["1", "张三", "男", "1970.01", "主任", "城关镇", "城关一村", "13800138000", ""]

SHEET_PATH = "xl/worksheets/sheet1.xml"
STRINGS_PATH = "xl/sharedStrings.xml"
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"

CONTENT_TYPES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>
<Override PartName="/{SHEET_PATH}" ContentType="{_CT}.worksheet+xml"/>
<Override PartName="/{STRINGS_PATH}" ContentType="{_CT}.sharedStrings+xml"/>
</Types>""".encode()
PACKAGE_RELS = f"""<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="{_PKG_REL}">
<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>
</Relationships>""".encode()
WORKBOOK = f"""<?xml version="1.0" encoding="UTF-8"?>
<workbook xmlns="{_MAIN}" xmlns:r="{_REL}">
<sheets><sheet name="花名册" sheetId="1" r:id="rId1"/></sheets></workbook>""".encode()
WORKBOOK_RELS = f"""<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="{_PKG_REL}">
<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>
</Relationships>""".encode()
EMPTY_STRINGS = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN}"/>'.encode()


def row_xml(number: int, values: list[str]) -> str:
    cells = "".join(
        f'<c r="{get_column_letter(i)}{number}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
        for i, v in enumerate(values, start=1)
        if v != ""
    )
    return f'<row r="{number}">{cells}</row>'


def sheet_xml(
    rows=None, *, dimension: str | None = None, prolog: str = "", tail: str = ""
) -> bytes:
    """A worksheet: ``rows`` as (row number, values), default the header and one cadre."""
    rows = rows if rows is not None else [(1, HEADER), (2, ROW)]
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    body = "".join(row_xml(n, values) for n, values in rows)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<worksheet xmlns="{_MAIN}">{dim}<sheetData>{body}{tail}</sheetData></worksheet>'
    ).encode()


def workbook(sheet: bytes | None = None, strings: bytes = EMPTY_STRINGS, parts=None) -> bytes:
    """A minimal .xlsx: the given worksheet XML and shared strings, deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", PACKAGE_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr(SHEET_PATH, sheet if sheet is not None else sheet_xml())
        archive.writestr(STRINGS_PATH, strings)
        for name, data in (parts or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


def _central_entries(data: bytes):
    """(offset of the central directory header, name) for every entry."""
    end = data.rindex(b"PK\x05\x06")
    count, _size, start = struct.unpack("<HII", data[end + 10 : end + 20])
    offset = start
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[offset + 28 : offset + 34])
        yield offset, data[offset + 46 : offset + 46 + name_len].decode()
        offset += 46 + name_len + extra_len + comment_len


def with_declared_size(data: bytes, name: str, size: int) -> bytes:
    """The same zip, with the central directory declaring ``size`` uncompressed bytes."""
    patched = bytearray(data)
    for offset, entry in _central_entries(data):
        if entry == name:
            patched[offset + 24 : offset + 28] = struct.pack("<I", size)
            return bytes(patched)
    raise KeyError(name)


def with_garbled_deflate(data: bytes, name: str) -> bytes:
    """The same zip, with the compressed bytes of ``name`` overwritten by garbage."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    local = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[local + 26 : local + 30])
    start = local + 30 + name_len + extra_len
    patched = bytearray(data)
    patched[start : start + info.compress_size] = bytes(
        (i * 151 + 7) % 256 for i in range(info.compress_size)
    )
    return bytes(patched)
