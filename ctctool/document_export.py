"""Results back into the PAGE or ALTO documents their lines came from (``decode`` / ``align``
``--format page|alto --out-dir DIR``): one file per input document, the same document with
each recognized line's text filled in, and word and glyph boxes from the character spans.
Everything else (regions, metadata, reading order, lines not decoded) is left as it was.

PAGE: the line's Word and TextEquiv elements are replaced by Word (Coords, Glyph with Coords
and TextEquiv conf, TextEquiv conf) and the line's TextEquiv conf / Unicode. ALTO: the line's
String / SP / HYP elements are replaced by String (HPOS, VPOS, WIDTH, HEIGHT, WC, CONTENT)
with Glyph children (GC), SP between words (one empty String when nothing was read: ALTO
needs one per line); reading-order references to the removed Strings
are dropped (they would point at nothing). Boxes span the line's height; x comes from the
spans (page pixels).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from .documents import ALTO_NAMESPACES, PAGE_NAMESPACES, _local, parse_xml
from .errors import OptionError, OutputError
from .fileio import atomic_write
from .manifest import ManifestItem
from .results import ItemResult, Span

PAGE_LINE_HEAD = ("AlternativeImage", "Coords", "Baseline")  # TextLine children before Word / TextEquiv


def write_documents(results: Iterable[ItemResult], items_by_id: dict[str, ManifestItem], out_dir: str,
                    fmt: str) -> list[str]:
    """Write one document per input document into ``out_dir``; returns the paths written."""
    by_document: dict[str, list[tuple[ManifestItem, ItemResult]]] = {}
    for result in results:
        item = items_by_id[result.id]
        document = item.extra.get("document")
        if not isinstance(document, str) or "line" not in item.extra:
            raise OptionError(f"--format {fmt}: {item.where} did not come from `ctctool manifest import {fmt}` "
                              "(no document and line fields)")
        by_document.setdefault(document, []).append((item, result))
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for document, pairs in by_document.items():
        root = parse_xml(document)
        namespace, name = _local(root.tag)
        if fmt == "page" and namespace not in PAGE_NAMESPACES or fmt == "alto" and namespace not in ALTO_NAMESPACES:
            raise OptionError(f"--format {fmt}: {document} is {name}, not a {fmt.upper()} document")
        fill = _fill_page_line if fmt == "page" else _fill_alto_line
        lines = {line.get("id" if fmt == "page" else "ID"): line for line in root.iter(f"{{{namespace}}}TextLine")}
        removed: set[str] = set()
        for item, result in pairs:
            line = lines.get(item.extra["line"])
            if line is None:
                raise OutputError(f"{document}: no TextLine {item.extra['line']!r} (the document changed since import?)")
            if not result.error:
                removed |= fill(line, namespace, item, result)
        if removed:
            _drop_references(root, namespace, removed)
        ET.register_namespace("", namespace)
        target = os.path.join(out_dir, os.path.basename(document))
        if os.path.abspath(target) == os.path.abspath(document):
            raise OptionError(f"--out-dir {out_dir}: would overwrite the input {document}; choose another folder")
        with atomic_write(target) as handle:
            ET.ElementTree(root).write(handle, encoding="utf-8", xml_declaration=True)
        written.append(target)
    return written


def _words_with_glyphs(result: ItemResult) -> list[tuple[Span, list[Span]]]:
    """Each word span with the character spans it is made of (spaces belong to no word)."""
    words: list[tuple[Span, list[Span]]] = []
    current: list[Span] = []
    word_iter = iter(result.words)
    for span in (*result.chars, None):
        if span is None or span.token.isspace():
            if current:
                words.append((next(word_iter), current))
                current = []
        else:
            current.append(span)
    return words


def _box(start: float, end: float, item: ManifestItem) -> tuple[int, int, int, int]:
    _, y0, _, y1 = item.bbox
    x0 = int(round(start))
    return x0, y0, max(x0 + 1, int(round(end))), y1


def _fill_page_line(line, ns: str, item: ManifestItem, result: ItemResult) -> set[str]:
    for child in list(line):
        if _local(child.tag)[1] in ("Word", "TextEquiv"):
            line.remove(child)
    position = max((i + 1 for i, child in enumerate(line) if _local(child.tag)[1] in PAGE_LINE_HEAD), default=0)
    new = []
    line_id = item.extra["line"]
    for k, (word, glyphs) in enumerate(_words_with_glyphs(result)):
        element = ET.Element(f"{{{ns}}}Word", {"id": f"{line_id}_w{k}"})
        ET.SubElement(element, f"{{{ns}}}Coords", {"points": _points(_box(word.start, word.end, item))})
        for j, glyph in enumerate(glyphs):
            glyph_element = ET.SubElement(element, f"{{{ns}}}Glyph", {"id": f"{line_id}_w{k}_g{j}"})
            ET.SubElement(glyph_element, f"{{{ns}}}Coords", {"points": _points(_box(glyph.start, glyph.end, item))})
            _page_text(glyph_element, ns, glyph.token, glyph.confidence)
        _page_text(element, ns, word.token, word.confidence)
        new.append(element)
    text_equiv = ET.Element(f"{{{ns}}}TextEquiv", {"conf": f"{result.confidence:.4f}"})
    ET.SubElement(text_equiv, f"{{{ns}}}Unicode").text = result.text
    for offset, element in enumerate([*new, text_equiv]):
        line.insert(position + offset, element)
    return set()


def _page_text(parent, ns: str, text: str, confidence: float) -> None:
    equiv = ET.SubElement(parent, f"{{{ns}}}TextEquiv", {"conf": f"{confidence:.4f}"})
    ET.SubElement(equiv, f"{{{ns}}}Unicode").text = text


def _points(box: tuple[int, int, int, int]) -> str:
    x0, y0, x1, y1 = box
    return f"{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"


def _fill_alto_line(line, ns: str, item: ManifestItem, result: ItemResult) -> set[str]:
    removed = set()
    for child in list(line):
        if _local(child.tag)[1] in ("String", "SP", "HYP"):
            removed |= {element.get("ID") for element in child.iter() if element.get("ID")}
            line.remove(child)
    line_id = item.extra["line"]
    words = _words_with_glyphs(result)
    if not words:  # nothing read: ALTO needs a String in every TextLine, so an empty one over the line
        x0, y0, x1, y1 = item.bbox
        words = [(Span("", x0, x1, result.confidence), [])]
    for k, (word, glyphs) in enumerate(words):
        if k:
            ET.SubElement(line, f"{{{ns}}}SP")
        x0, y0, x1, y1 = _box(word.start, word.end, item)
        string = ET.SubElement(line, f"{{{ns}}}String", {
            "ID": f"{line_id}_s{k}", "HPOS": str(x0), "VPOS": str(y0), "WIDTH": str(x1 - x0), "HEIGHT": str(y1 - y0),
            "WC": f"{word.confidence:.4f}", "CONTENT": word.token})
        for j, glyph in enumerate(glyphs):
            gx0, gy0, gx1, gy1 = _box(glyph.start, glyph.end, item)
            ET.SubElement(string, f"{{{ns}}}Glyph", {
                "ID": f"{line_id}_s{k}_g{j}", "HPOS": str(gx0), "VPOS": str(gy0), "WIDTH": str(gx1 - gx0),
                "HEIGHT": str(gy1 - gy0), "GC": f"{glyph.confidence:.4f}", "CONTENT": glyph.token})
    return removed


def _drop_references(root, ns: str, removed: set[str]) -> None:
    """ALTO reading-order ElementRefs to elements that are gone (the Strings replaced)."""
    for parent in root.iter():
        for child in list(parent):
            if _local(child.tag)[1] == "ElementRef" and child.get("REF") in removed:
                parent.remove(child)
