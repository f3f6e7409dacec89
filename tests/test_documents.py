"""PAGE and ALTO import on real documents (tests/data/documents, from kraken's test resources,
Apache-2.0): lines in reading order with their boxes, outlines, baselines and text; hostile or
broken XML refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ctctool.cli import app
from ctctool.documents import import_alto, import_page
from ctctool.errors import InputFileError
from ctctool.features import default_extractor
from ctctool.manifest import read_manifest

DOCS = Path(__file__).resolve().parent / "data" / "documents"
PAGE = DOCS / "transkribus-0074.xml"
ALTO = DOCS / "bsb00084914_00007.xml"


def test_a_transkribus_page_gives_its_44_lines_in_reading_order():
    result = import_page([str(PAGE)])
    assert result.documents == 1 and len(result.items) == 44 and not result.problems()
    regions = list(dict.fromkeys(item.extra["region"] for item in result.items))
    assert regions == ["region_1469098609000_462", "region_1469098557906_461", "TextRegion_1520586482298_194",
                       "TextRegion_1520586482298_193"]  # the ReadingOrder's indexes, not document order
    first, second = result.items[:2]
    assert first.id == "transkribus-0074:line_1469098625593_463" and first.text == "$pag:39"
    assert first.bbox == (2336, 182, 2428, 244)
    assert first.extra["polygon"] == [[2344, 182], [2428, 195], [2420, 244], [2336, 231]]
    assert first.extra["baseline"] == [[2337, 226], [2421, 239]]
    assert second.text == "$-nor su hijo, De todos sus bienes, con los pactos"
    assert len({item.id for item in result.items}) == 44


def test_imported_lines_are_cut_from_the_page_at_read_time(tmp_path):
    out = tmp_path / "sub" / "page.jsonl"
    done = CliRunner().invoke(app, ["manifest", "import", "page", str(DOCS), "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert "wrote 44 lines from 1 document(s)" in done.stderr
    assert "bsb00084914_00007.xml" in done.stderr  # the ALTO file in the folder: skipped, and said so
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert not Path(records[0]["path"]).is_absolute()  # relative to the manifest: the folder can move
    items = read_manifest(out)
    extractor = default_extractor("image")
    for item in items[:6]:
        features = extractor.load(item)
        x0, y0, x1, y1 = item.bbox
        assert features.values.shape[0] == 32
        assert abs(features.values.shape[1] - round((x1 - x0) * 32 / (y1 - y0))) <= 2


def _alto_with_page_image(tmp_path: Path) -> Path:
    copy = tmp_path / ALTO.name
    shutil.copy(ALTO, copy)
    Image.new("L", (3177, 4308), 255).save(tmp_path / "bsb00084914_00007.jpg")  # the scan is not bundled
    return copy


def test_an_escriptorium_alto_file_follows_its_reading_order(tmp_path):
    result = import_alto([str(_alto_with_page_image(tmp_path))])
    assert len(result.items) == 31 and not result.without_coords
    ids = [item.id.split(":", 1)[1] for item in result.items]
    regions = [item.extra["region"] for item in result.items]
    # The ElementRefs: line 192895, then block 11226 (a marginal paratext: its lines), then 192896...
    paratext = regions.count("eSc_textblock_11226")
    assert ids[0] == "eSc_line_192895" and set(regions[1:1 + paratext]) == {"eSc_textblock_11226"}
    assert ids[1 + paratext] == "eSc_line_192896"
    assert ids.index("eSc_line_192876") < ids.index("eSc_line_192874")  # not document order
    first = result.items[0]
    assert first.text.startswith("בשאול וגו' ˙ אם יחבאו")
    assert first.extra["baseline"][0] == [848, 682] and len(first.extra["polygon"]) > 10
    assert first.bbox[0] == 844 and first.extra["region"] == "eSc_textblock_10523"


def _page(tmp_path: Path, body: str, image: bool = True, doctype: str = "") -> Path:
    if image:
        Image.new("L", (200, 100), 255).save(tmp_path / "page.png")
    path = tmp_path / "doc.xml"
    path.write_text(f'<?xml version="1.0"?>{doctype}\n<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/'
                    f'pagecontent/2019-07-15"><Page imageFilename="page.png" imageWidth="200" imageHeight="100">'
                    f"{body}</Page></PcGts>", encoding="utf-8")
    return path


def test_lines_without_coordinates_or_text_are_counted_not_silently_dropped(tmp_path):
    body = ('<TextRegion id="r"><TextLine id="good"><Coords points="10,10 90,10 90,40 10,40"/>'
            "<TextEquiv><Unicode>hello</Unicode></TextEquiv></TextLine>"
            '<TextLine id="nocoords"><TextEquiv><Unicode>lost</Unicode></TextEquiv></TextLine>'
            '<TextLine id="flat"><Coords points="10,10 90,10"/></TextLine>'
            '<TextLine id="notext"><Coords points="10,50 90,50 90,90 10,90"/></TextLine></TextRegion>')
    result = import_page([str(_page(tmp_path, body))])
    assert [item.id for item in result.items] == ["doc:good", "doc:notext"]
    assert result.items[1].text is None
    problems = result.problems()
    assert "2 line(s) had no usable coordinates and were left out: doc:nocoords, doc:flat" in problems[0]
    assert "1 line(s) have no transcription" in problems[1]


@pytest.mark.parametrize(("doctype", "body", "image", "message"), [
    ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
     '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>',
     "<TextRegion><TextLine><TextEquiv><Unicode>&lol3;</Unicode></TextEquiv></TextLine></TextRegion>", True,
     "refused: the XML declares entities"),
    ('<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>',
     "<TextRegion><TextLine><TextEquiv><Unicode>&ext;</Unicode></TextEquiv></TextLine></TextRegion>", True,
     "refused"),
    ("", "<TextRegion><TextLine></TextRegion>", True, "not well-formed XML"),
    ("", "", False, "page.png does not exist"),
    ("", '<TextRegion><TextLine id="a"><Coords points="1,2,3"/></TextLine></TextRegion>', True, "odd count"),
])
def test_hostile_and_broken_documents_are_refused_by_name(tmp_path, doctype, body, image, message):
    path = _page(tmp_path, body, image=image, doctype=doctype)
    with pytest.raises(InputFileError, match=message) as caught:
        import_page([str(path)])
    assert str(path) in str(caught.value)


def test_a_named_file_of_the_wrong_format_is_an_error(tmp_path):
    with pytest.raises(InputFileError, match="not a PAGE 2013 or 2019 document"):
        import_page([str(ALTO)])
    with pytest.raises(InputFileError, match="not an ALTO v2-v4 document"):
        import_alto([str(PAGE)])
    done = CliRunner().invoke(app, ["manifest", "import", "alto", str(tmp_path / "missing.xml"), "-o", "-"])
    assert done.exit_code == 1 and "missing.xml: no such file or folder" in done.stderr


def _two_line_page(tmp_path: Path) -> Path:
    """A white page with a black bar for line 1 (y 20-40) and a tall ascender of line 2 that
    reaches up into line 1's box (x 150-160, y 30-70) but not into line 1's polygon."""
    image = Image.new("L", (300, 100), 255)
    pixels = image.load()
    for x in range(20, 120):
        for y in range(20, 40):
            pixels[x, y] = 0
    for x in range(150, 160):
        for y in range(30, 70):
            pixels[x, y] = 0
    path = tmp_path / "two.png"
    image.save(path)
    return path


def test_pixels_outside_a_line_polygon_become_background(tmp_path):
    from ctctool.features.image import open_line_image
    from ctctool.manifest import ManifestItem

    page = _two_line_page(tmp_path)
    polygon = [[10, 10], [140, 10], [140, 45], [10, 45]]  # line 1's outline stops before x 150
    boxed = ManifestItem(path=str(page), bbox=(10, 10, 200, 45), id="a")
    masked = ManifestItem(path=str(page), bbox=(10, 10, 200, 45), id="b", extra={"polygon": polygon})
    ascender = (145 - 10, 25, 165 - 10, 35)  # in crop coordinates: the intruding stroke
    assert np.asarray(open_line_image(boxed).crop(ascender)).min() == 0  # the box alone lets it in
    assert np.asarray(open_line_image(masked).crop(ascender)).min() == 255  # the polygon keeps it out
    assert np.asarray(open_line_image(masked).crop((20, 15, 100, 25))).min() == 0  # line 1's own ink stays


@pytest.mark.parametrize("polygon", [[[1, 2], [3, 4]], "0,0 1,1 2,2", [[0, 0], [1, "a"], [2, 2]],
                                     [[0, 0], [1, 1], [True, 2]]])
def test_a_bad_polygon_field_is_an_error_naming_it(tmp_path, polygon):
    from ctctool.errors import FeatureError
    from ctctool.features.image import open_line_image
    from ctctool.manifest import ManifestItem

    item = ManifestItem(path=str(_two_line_page(tmp_path)), bbox=(10, 10, 200, 45), id="a",
                        extra={"polygon": polygon}, source="m.jsonl:3")
    with pytest.raises(FeatureError, match=r"m.jsonl:3: polygon: expected 3 to 10000 \[x, y\] pairs"):
        open_line_image(item)


def test_a_page_is_decoded_once_for_all_its_lines(monkeypatch):
    import ctctool.features.image as image_features

    calls = []
    real = image_features.to_grayscale
    monkeypatch.setattr(image_features, "to_grayscale", lambda *a: calls.append(1) or real(*a))
    image_features._PAGE_CACHE.clear()
    items = import_page([str(PAGE)]).items
    extractor = default_extractor("image")
    for item in items:
        extractor.load(item)
    assert len(calls) == 1 and len(items) == 44


SCHEMAS = Path(__file__).resolve().parent / "data" / "schemas"


def _schema(name: str):
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(SCHEMAS / name))


def test_decode_writes_the_transkribus_page_back_valid_and_otherwise_untouched(tmp_path):
    import xml.etree.ElementTree as ET

    manifest = tmp_path / "page.jsonl"
    runner = CliRunner()
    assert runner.invoke(app, ["manifest", "import", "page", str(PAGE), "-o", str(manifest)]).exit_code == 0
    done = runner.invoke(app, ["decode", "latin-print", str(manifest), "--format", "page", "--out-dir",
                               str(tmp_path / "out"), "--beam", "1"])
    assert done.exit_code == 0, done.output
    out = tmp_path / "out" / PAGE.name
    assert done.stdout.strip() == str(out)
    assert _schema("page-2013-07-15.xsd").is_valid(str(out))
    ns = {"p": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15"}
    before, after = ET.parse(PAGE).getroot(), ET.parse(out).getroot()
    for path in ("p:Metadata", "p:Page/p:ReadingOrder"):  # kept as they were
        assert ET.tostring(before.find(path, ns)) == ET.tostring(after.find(path, ns))
    lines = after.findall(".//p:TextLine", ns)
    assert len(lines) == 44
    for line in lines:
        text = line.find("p:TextEquiv/p:Unicode", ns).text or ""
        words = line.findall("p:Word", ns)
        assert [w.find("p:TextEquiv/p:Unicode", ns).text for w in words] == text.split()
        assert all(0 <= float(w.find("p:TextEquiv", ns).get("conf")) <= 1 for w in words)


def _alto_page_of_bundled_lines(tmp_path: Path, count: int = 3) -> tuple[Path, list[str]]:
    """A page made of bundled test lines stacked, and an ALTO v4 file describing their boxes."""
    records = [json.loads(line) for line in (DOCS.parent.parent.parent / "data/ocr/test.jsonl")
               .read_text().splitlines()[:count]]
    images = [Image.open(DOCS.parent.parent.parent / "data/ocr" / r["path"]).convert("L") for r in records]
    width, y, boxes = max(i.width for i in images) + 40, 20, []
    page = Image.new("L", (width, sum(i.height + 20 for i in images) + 20), 255)
    for image in images:
        page.paste(image, (20, y))
        boxes.append((20, y, image.width, image.height))
        y += image.height + 20
    page.save(tmp_path / "page.png")
    from xml.sax.saxutils import quoteattr

    lines = "".join(
        f'<TextLine ID="l{n}" HPOS="{x}" VPOS="{top}" WIDTH="{w}" HEIGHT="{h}"><String ID="old{n}" '
        f'CONTENT={quoteattr(" ".join(r["text"].split()))} HPOS="{x}" VPOS="{top}" WIDTH="{w}" HEIGHT="{h}"/>'
        f"</TextLine>" for n, ((x, top, w, h), r) in enumerate(zip(boxes, records)))
    alto = tmp_path / "page.xml"
    alto.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">'
        "<Description><MeasurementUnit>pixel</MeasurementUnit><sourceImageInformation><fileName>page.png"
        f'</fileName></sourceImageInformation></Description><Layout><Page ID="p" WIDTH="{page.width}" '
        f'HEIGHT="{page.height}" PHYSICAL_IMG_NR="1"><PrintSpace><TextBlock ID="b">{lines}</TextBlock>'
        "</PrintSpace></Page></Layout></alto>", encoding="utf-8")
    return alto, [r["text"] for r in records]


def test_decode_and_align_write_alto_back_with_strings_and_glyphs(tmp_path):
    import xml.etree.ElementTree as ET

    alto, texts = _alto_page_of_bundled_lines(tmp_path)
    schema = _schema("alto-4-3.xsd")
    assert schema.is_valid(str(alto))
    manifest = tmp_path / "alto.jsonl"
    runner = CliRunner()
    assert runner.invoke(app, ["manifest", "import", "alto", str(alto), "-o", str(manifest)]).exit_code == 0
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    for command in ("decode", "align"):
        out_dir = tmp_path / command
        done = runner.invoke(app, [command, "latin-print", str(manifest), "--format", "alto", "--out-dir",
                                   str(out_dir)])
        assert done.exit_code == 0, done.output
        out = out_dir / "page.xml"
        assert schema.is_valid(str(out)), next(iter(schema.iter_errors(str(out))))
        lines = ET.parse(out).getroot().findall(".//a:TextLine", ns)
        read = [" ".join(s.get("CONTENT") for s in line.findall("a:String", ns)) for line in lines]
        if command == "align":  # the transcripts, placed
            assert read == [" ".join(t.split()) for t in texts]
        else:
            from ctctool.metrics import score_line

            line = score_line("page", "page.png", " ".join(texts), " ".join(read))
            assert line.char_errors / max(1, line.ref_chars) < 0.05
        first = lines[0].find("a:String", ns)
        glyphs = first.findall("a:Glyph", ns)
        assert "".join(g.get("CONTENT") for g in glyphs) == first.get("CONTENT")
        assert int(first.get("HPOS")) >= 20 and 0 < float(first.get("WC")) <= 1


def test_the_escriptorium_alto_written_back_adds_no_schema_errors(tmp_path):
    schema = _schema("alto-4-3.xsd")
    source = _alto_with_page_image(tmp_path)
    manifest = tmp_path / "bsb.jsonl"
    runner = CliRunner()
    assert runner.invoke(app, ["manifest", "import", "alto", str(source), "-o", str(manifest)]).exit_code == 0
    done = runner.invoke(app, ["decode", "latin-print", str(manifest), "--format", "alto", "--out-dir",
                               str(tmp_path / "out"), "--beam", "1"])
    assert done.exit_code == 0, done.output

    def problems(path):
        return sorted(error.reason or "" for error in schema.iter_errors(str(path)))

    assert problems(tmp_path / "out" / source.name) == problems(source)  # the input's own (OtherTag LABEL) only


def test_page_output_needs_items_from_a_document(tmp_path, tiny_model, tiny_data):
    done = CliRunner().invoke(app, ["decode", str(tiny_model), str(tiny_data["val"]), "--format", "page",
                                    "--out-dir", str(tmp_path)])
    assert done.exit_code == 2 and "did not come from `ctctool manifest import page`" in done.output
    missing = CliRunner().invoke(app, ["decode", str(tiny_model), str(tiny_data["val"]), "--format", "alto"])
    assert missing.exit_code == 2 and "give --out-dir" in missing.output


def test_line_padding_grows_the_box_and_the_polygon_mask(tmp_path):
    from ctctool.features.image import open_line_image
    from ctctool.manifest import ManifestItem

    page = _two_line_page(tmp_path)
    polygon = [[20, 20], [119, 20], [119, 39], [20, 39]]  # exactly line 1's ink
    tight = ManifestItem(path=str(page), bbox=(20, 20, 120, 40), id="a", extra={"polygon": polygon})
    padded = ManifestItem(path=str(page), bbox=(14, 14, 126, 46), id="b",
                          extra={"polygon": polygon, "polygon_padding": 6})
    assert open_line_image(tight).size == (100, 20)
    image = np.asarray(open_line_image(padded))
    assert image.shape == (32, 112) and image[6:26, 6:106].max() == 0  # the ink, with room around it
    assert image[0, 0] == 255  # outside the grown outline: background
    body = ('<TextRegion id="r"><TextLine id="a"><Coords points="20,20 119,20 119,39 20,39"/>'
            "<TextEquiv><Unicode>x</Unicode></TextEquiv></TextLine></TextRegion>")
    result = import_page([str(_page(tmp_path, body))], line_padding=6)
    assert result.items[0].bbox == (14, 14, 125, 45) and result.items[0].extra["polygon_padding"] == 6


def test_a_page_2019_document_written_back_validates(tmp_path):
    """A PAGE 2019 page of bundled lines (one TextRegion, three TextLines with polygons)."""
    alto, texts = _alto_page_of_bundled_lines(tmp_path, count=3)  # for its page image and boxes
    boxes = [item.bbox for item in import_alto([str(alto)]).items]
    lines = "".join(
        f'<TextLine id="l{n}"><Coords points="{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"/>'
        f"<TextEquiv><Unicode>{text}</Unicode></TextEquiv></TextLine>"
        for n, ((x0, y0, x1, y1), text) in enumerate(zip(boxes, texts)))
    with Image.open(tmp_path / "page.png") as page:
        width, height = page.size
    document = tmp_path / "page2019.xml"
    document.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/'
        '2019-07-15"><Metadata><Creator>test</Creator><Created>2026-12-02T00:00:00</Created>'
        "<LastChange>2026-12-02T00:00:00</LastChange></Metadata>"
        f'<Page imageFilename="page.png" imageWidth="{width}" imageHeight="{height}"><TextRegion id="r">'
        f'<Coords points="0,0 {width},0 {width},{height} 0,{height}"/>{lines}</TextRegion></Page></PcGts>',
        encoding="utf-8")
    schema = _schema("page-2019-07-15.xsd")
    assert schema.is_valid(str(document))
    manifest = tmp_path / "p.jsonl"
    runner = CliRunner()
    assert runner.invoke(app, ["manifest", "import", "page", str(document), "-o", str(manifest)]).exit_code == 0
    done = runner.invoke(app, ["align", "latin-print", str(manifest), "--format", "page", "--out-dir",
                               str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert schema.is_valid(str(tmp_path / "out" / document.name)), next(iter(schema.iter_errors(
        str(tmp_path / "out" / document.name))))


def test_alto_v2_baselines_are_a_height_across_the_line(tmp_path):
    Image.new("L", (300, 100), 255).save(tmp_path / "scan.png")
    path = tmp_path / "v2.xml"
    path.write_text('<?xml version="1.0"?><alto xmlns="http://www.loc.gov/standards/alto/ns-v2#"><Description>'
                    "<MeasurementUnit>pixel</MeasurementUnit><sourceImageInformation><fileName>scan.png</fileName>"
                    '</sourceImageInformation></Description><Layout><Page><PrintSpace><TextBlock ID="b">'
                    '<TextLine ID="t" HPOS="10" VPOS="20" WIDTH="200" HEIGHT="30" BASELINE="44">'
                    '<String CONTENT="a"/><SP/><String CONTENT="hyphen"/><HYP CONTENT="-"/></TextLine>'
                    "</TextBlock></PrintSpace></Page></Layout></alto>", encoding="utf-8")
    item = import_alto([str(path)]).items[0]
    assert item.bbox == (10, 20, 210, 50) and item.extra["baseline"] == [[10, 44], [210, 44]]
    assert item.text == "a hyphen-" and "polygon" not in item.extra  # the line as printed
