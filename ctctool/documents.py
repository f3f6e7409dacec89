"""Page documents to manifests: PAGE XML (2013 and 2019) and ALTO (v2 to v4), one item per
text line, in reading order.

Each item is the page image with the line's ``bbox`` (the line image is cut at read time),
its transcription (PAGE: the line's own TextEquiv/Unicode; ALTO: the String CONTENTs joined
with spaces, hyphenation kept), and in ``polygon`` / ``baseline`` / ``document`` / ``line``
the line's outline, baseline, source file and id there (what ``--format page|alto`` needs to
write results back). Ids are ``<document stem>:<line id>``. Lines without
coordinates are reported (count and first ids), never silently dropped; lines without text
are kept without ``text`` (they can be decoded, not trained on) and counted.

The XML comes from strangers: it is parsed with defusedxml, which refuses entity
declarations (billion laughs) and external entities before expanding anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputFileError
from .manifest import ManifestItem, _assign_ids

PAGE_NAMESPACES = {
    "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15": "2013",
    "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15": "2019",
}
ALTO_NAMESPACES = {
    "http://www.loc.gov/standards/alto/ns-v2#": "v2",
    "http://www.loc.gov/standards/alto/ns-v3#": "v3",
    "http://www.loc.gov/standards/alto/ns-v4#": "v4",
}
MAX_XML_BYTES = 256 << 20  # a page's XML is kilobytes to a few megabytes
SHOWN_IDS = 5
MAX_PADDING = 100  # px; more would take in whole neighbouring lines


@dataclass
class DocumentImport:
    items: list[ManifestItem] = field(default_factory=list)
    documents: int = 0
    without_coords: list[str] = field(default_factory=list)  # line ids
    without_text: list[str] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)  # XML of another format found in a folder

    def problems(self) -> list[str]:
        """One line per kind of problem: how many, and the first few ids."""
        lines = []
        for ids, what in ((self.without_coords, "had no usable coordinates and were left out"),
                          (self.without_text, "have no transcription (kept: they can be decoded, not trained on)")):
            if ids:
                shown = ", ".join(ids[:SHOWN_IDS]) + (", ..." if len(ids) > SHOWN_IDS else "")
                lines.append(f"{len(ids)} line(s) {what}: {shown}")
        if self.other_files:
            shown = ", ".join(self.other_files[:SHOWN_IDS]) + (", ..." if len(self.other_files) > SHOWN_IDS else "")
            lines.append(f"{len(self.other_files)} XML file(s) in the folders are not of this format, skipped: {shown}")
        return lines


def xml_files(paths: Iterable[str]) -> list[tuple[str, bool]]:
    """(file, named) for the .xml files named, and those in the folders named (recursively,
    sorted); ``named`` is False for files found in a folder (another format there is skipped)."""
    found = []
    paths = list(paths)
    for path in paths:
        if os.path.isdir(path):
            found += [(str(p), False) for p in sorted(Path(path).rglob("*.xml"))]
        elif os.path.exists(path):
            found.append((path, True))
        else:
            raise InputFileError(f"{path}: no such file or folder")
    if not found:
        raise InputFileError(f"no .xml files in {', '.join(paths)}")
    return found


def parse_xml(path: str):
    """The document's root element, parsed without entity expansion or external resources."""
    import defusedxml.ElementTree as SafeTree
    from defusedxml import DefusedXmlException

    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size > MAX_XML_BYTES:
        raise InputFileError(f"{path}: {size} bytes, more than any page document holds ({MAX_XML_BYTES})")
    try:
        return SafeTree.parse(path, forbid_dtd=False, forbid_entities=True, forbid_external=True).getroot()
    except DefusedXmlException as exc:
        raise InputFileError(f"{path}: refused: the XML declares entities or external resources ({exc})") from None
    except SafeTree.ParseError as exc:
        raise InputFileError(f"{path}: not well-formed XML ({exc})") from None


def _local(tag: str) -> tuple[str, str]:
    """('namespace', 'Name') of an element tag ``{namespace}Name``."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _points(text: str | None, where: str) -> list[tuple[int, int]]:
    """PAGE ``x,y x,y ...`` or ALTO ``x y x y ...`` / ``x,y x,y``: integer pixel points."""
    if not text or not text.strip():
        return []
    numbers = re.split(r"[\s,]+", text.strip())
    try:
        values = [round(float(v)) for v in numbers]
    except ValueError:
        raise InputFileError(f"{where}: points {text[:60]!r} are not numbers") from None
    if len(values) % 2:
        raise InputFileError(f"{where}: points {text[:60]!r} have an odd count of numbers")
    return list(zip(values[0::2], values[1::2]))


def _bbox(points: list[tuple[int, int]], width: int, height: int) -> tuple[int, int, int, int] | None:
    """Bounding box clipped to the image; None when it has no area there."""
    if not points:
        return None
    x0 = max(0, min(x for x, _ in points))
    y0 = max(0, min(y for _, y in points))
    x1 = min(width, max(x for x, _ in points))
    y1 = min(height, max(y for _, y in points))
    return (x0, y0, x1, y1) if x1 - x0 >= 2 and y1 - y0 >= 2 else None


def _image_size(image: str, document: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(image):
        raise InputFileError(f"{document}: its page image {image} does not exist")
    try:
        with Image.open(image) as opened:
            return opened.size
    except (UnidentifiedImageError, OSError) as exc:
        raise InputFileError(f"{document}: its page image {image} cannot be read ({exc})") from None


def _line_item(result: DocumentImport, document: str, image: str, size, line_id: str,
               points: list[tuple[int, int]], baseline: list[tuple[int, int]], text: str | None,
               region: str | None, padding: int = 0) -> None:
    stem = Path(document).stem
    item_id = f"{stem}:{line_id}"
    box = _bbox(points, *size)
    if box is None:
        result.without_coords.append(item_id)
        return
    if padding:  # room around the outline; the polygon mask grows by as much at read time
        box = (max(0, box[0] - padding), max(0, box[1] - padding), min(size[0], box[2] + padding),
               min(size[1], box[3] + padding))
    if not text:
        result.without_text.append(item_id)
    extra = {"document": os.path.abspath(document), "line": line_id}
    if len(points) > 2:
        extra["polygon"] = [list(p) for p in points]
    if baseline:
        extra["baseline"] = [list(p) for p in baseline]
    if region:
        extra["region"] = region
    if padding and "polygon" in extra:
        extra["polygon_padding"] = padding
    # A relative path (from here), so write_manifest re-roots it at the output manifest's folder.
    result.items.append(ManifestItem(path=os.path.relpath(image), root=os.getcwd(), text=text or None, id=item_id,
                                     kind="image", bbox=box, extra=extra, source=f"{document}#{line_id}"))


def _documents_of(paths: Iterable[str], root_name: str, namespaces: dict[str, str], what: str,
                  result: DocumentImport) -> Iterator[tuple[str, object, str]]:
    """(file, root element, namespace) of each document of the wanted format; files of another
    format found in a folder are listed in ``result.other_files``, a named one is an error."""
    for document, named in xml_files(paths):
        root = parse_xml(document)
        namespace, name = _local(root.tag)
        if name == root_name and namespace in namespaces:
            yield document, root, namespace
        elif named:
            raise InputFileError(f"{document}: not {what} document (root {{{namespace}}}{name})")
        else:
            result.other_files.append(document)


def _check_padding(padding: int) -> None:
    from .errors import OptionError

    if isinstance(padding, bool) or not isinstance(padding, int) or not 0 <= padding <= MAX_PADDING:
        raise OptionError(f"--line-padding must be 0..{MAX_PADDING} pixels, got {padding!r}")


# ---------------------------------------------------------------- PAGE


def import_page(paths: Iterable[str], *, line_padding: int = 0) -> DocumentImport:
    """PAGE XML files (2013 or 2019 namespace), or folders of them; ``line_padding`` pixels of
    room around each line's outline (box and polygon mask)."""
    _check_padding(line_padding)
    result = DocumentImport()
    for document, root, namespace in _documents_of(paths, "PcGts", PAGE_NAMESPACES, "a PAGE 2013 or 2019", result):
        ns = {"p": namespace}
        page = root.find("p:Page", ns)
        if page is None or not page.get("imageFilename"):
            raise InputFileError(f"{document}: no Page element with an imageFilename")
        image = os.path.join(os.path.dirname(os.path.abspath(document)), page.get("imageFilename"))
        size = _image_size(image, document)
        result.documents += 1
        for region, line in _page_lines_in_order(page, ns):
            line_id = line.get("id") or f"line{len(result.items) + len(result.without_coords)}"
            where = f"{document}: TextLine {line_id}"
            coords = line.find("p:Coords", ns)
            points = _points(coords.get("points") if coords is not None else None, where)
            baseline_element = line.find("p:Baseline", ns)
            baseline = _points(baseline_element.get("points") if baseline_element is not None else None, where)
            result_text = _page_text(line, ns)
            _line_item(result, document, image, size, line_id, points, baseline, result_text, region,
                       line_padding)
    result.items = _assign_ids(result.items)
    return result


def _page_text(line, ns) -> str | None:
    """The line's own TextEquiv (index 1, or the first): its Unicode, or None."""
    equivs = line.findall("p:TextEquiv", ns)
    if not equivs:
        return None
    chosen = next((e for e in equivs if e.get("index") == "1"), equivs[0])
    unicode = chosen.find("p:Unicode", ns)
    return unicode.text if unicode is not None and unicode.text is not None else None


def _page_lines_in_order(page, ns) -> Iterator[tuple[str | None, object]]:
    """(region id, TextLine) in reading order: regions by the ReadingOrder's groups (index
    order in ordered groups, document order in unordered ones), then regions it leaves out in
    document order; lines in document order within their region."""
    regions = [r for r in page.iter(f"{{{ns['p']}}}TextRegion")]
    by_id = {r.get("id"): r for r in regions if r.get("id")}
    ordered: list[str] = []
    reading = page.find("p:ReadingOrder", ns)
    if reading is not None:
        for group in reading:
            ordered += _page_group_refs(group, ns)
    seen = set()
    sequence = []
    for ref in ordered:
        if ref in by_id and ref not in seen:
            seen.add(ref)
            sequence.append(by_id[ref])
    sequence += [r for r in regions if r.get("id") not in seen]
    for region in sequence:
        for line in region.findall("p:TextLine", ns):
            yield region.get("id"), line


def _page_group_refs(group, ns) -> list[str]:
    _, name = _local(group.tag)
    children = list(group)
    if name.startswith("OrderedGroup"):
        def index(child):
            try:
                return int(child.get("index", "0"))
            except ValueError:
                return 0
        children = sorted(children, key=index)
    refs = []
    for child in children:
        _, child_name = _local(child.tag)
        if child.get("regionRef"):
            refs.append(child.get("regionRef"))
        if "Group" in child_name:
            refs += _page_group_refs(child, ns)
    return refs


# ---------------------------------------------------------------- ALTO


def import_alto(paths: Iterable[str], *, line_padding: int = 0) -> DocumentImport:
    """ALTO files (v2, v3, v4), or folders of them. Coordinates must be in pixels."""
    _check_padding(line_padding)
    result = DocumentImport()
    for document, root, namespace in _documents_of(paths, "alto", ALTO_NAMESPACES, "an ALTO v2-v4", result):
        ns = {"a": namespace}
        unit = root.findtext("a:Description/a:MeasurementUnit", default="pixel", namespaces=ns).strip()
        if unit != "pixel":
            raise InputFileError(f"{document}: MeasurementUnit {unit!r}: only pixel coordinates are read")
        file_name = root.findtext("a:Description/a:sourceImageInformation/a:fileName", namespaces=ns)
        if not file_name or not file_name.strip():
            raise InputFileError(f"{document}: no sourceImageInformation/fileName naming the page image")
        image = os.path.join(os.path.dirname(os.path.abspath(document)), file_name.strip())
        size = _image_size(image, document)
        result.documents += 1
        for block_id, line in _alto_lines_in_order(root, ns):
            line_id = line.get("ID") or f"line{len(result.items) + len(result.without_coords)}"
            where = f"{document}: TextLine {line_id}"
            polygon = line.find("a:Shape/a:Polygon", ns)
            points = _points(polygon.get("POINTS"), where) if polygon is not None else []
            if not points:
                points = _alto_box(line, where)
            baseline = _alto_baseline(line.get("BASELINE"), points, where)
            _line_item(result, document, image, size, line_id, points, baseline, _alto_text(line, ns), block_id,
                       line_padding)
    result.items = _assign_ids(result.items)
    return result


def _alto_box(element, where: str) -> list[tuple[int, int]]:
    try:
        x, y = float(element.get("HPOS")), float(element.get("VPOS"))
        w, h = float(element.get("WIDTH")), float(element.get("HEIGHT"))
    except (TypeError, ValueError):
        return []
    if w <= 0 or h <= 0:
        return []
    return [(round(x), round(y)), (round(x + w), round(y + h))]


def _alto_baseline(value: str | None, points, where: str) -> list[tuple[int, int]]:
    """v4 gives baseline points; v2/v3 a single y (the baseline runs across the line's box)."""
    if not value or not value.strip():
        return []
    if re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
        if not points:
            return []
        y = round(float(value))
        return [(min(x for x, _ in points), y), (max(x for x, _ in points), y)]
    return _points(value, where)


def _alto_text(line, ns) -> str | None:
    words = []
    for child in line:
        _, name = _local(child.tag)
        if name == "String" and child.get("CONTENT"):
            words.append(child.get("CONTENT"))
        elif name == "HYP" and child.get("CONTENT") and words:
            words[-1] += child.get("CONTENT")
    return " ".join(words) if words else None


def _alto_lines_in_order(root, ns) -> Iterator[tuple[str | None, object]]:
    """(TextBlock id, TextLine) in reading order: the first ReadingOrder group's element refs
    (to blocks: their lines; to lines: that line), then every line not reached, in document order."""
    blocks = list(root.iter(f"{{{ns['a']}}}TextBlock"))
    line_block = {}
    lines = []
    for block in blocks:
        for line in block.findall("a:TextLine", ns):
            line_block[id(line)] = block.get("ID")
            lines.append(line)
    by_id = {element.get("ID"): element for element in [*blocks, *lines] if element.get("ID")}
    order: list[object] = []
    group = root.find("a:ReadingOrder", ns)
    if group is not None:
        first = next(iter(group), None)
        while first is not None and _local(first.tag)[1] == "UnorderedGroup" and len(first):
            first = first[0]  # the first ordered reading inside an unordered set of them
        refs = [ref.get("REF") for ref in first.iter(f"{{{ns['a']}}}ElementRef")] if first is not None else []
        for ref in refs:
            element = by_id.get(ref)
            if element is None:
                continue
            if _local(element.tag)[1] == "TextBlock":
                order += element.findall("a:TextLine", ns)
            else:
                order.append(element)
    seen = set()
    for line in [*order, *lines]:
        if id(line) not in seen:
            seen.add(id(line))
            yield line_block.get(id(line)), line
