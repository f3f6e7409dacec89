"""eval --report: one self-contained HTML file whose every worst line carries its picture and
the reference and hypothesis aligned character by character."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from ctctool.cli import app
from ctctool.metrics import alignment, edit_ops

REPO = Path(__file__).resolve().parent.parent


class ReportParser(HTMLParser):
    """Collects each worst line: its id, picture and the two aligned rows as (class, text) spans."""

    def __init__(self):
        super().__init__()
        self.lines: dict[str, dict] = {}
        self.current: dict | None = None
        self.row: str | None = None
        self.span_class: str | None = None
        self.sources: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs:
                self.sources.append(attrs[key])
        if tag == "table":
            self.tables += 1
        if tag == "div" and attrs.get("class") == "line":
            self.current = {"id": attrs["id"], "img": None, "reference": [], "hypothesis": []}
            self.lines[attrs["id"]] = self.current
        elif tag == "img" and self.current is not None:
            self.current["img"] = attrs["src"]
        elif tag == "span" and "data-row" in attrs:
            self.row = attrs["data-row"]
        elif tag == "span" and self.row is not None:
            self.span_class = attrs.get("class")

    def handle_endtag(self, tag):
        if tag == "span" and self.span_class is not None:
            self.span_class = None
        elif tag == "span" and self.row is not None:
            self.row = None

    def handle_data(self, data):
        if self.row is not None and self.span_class is not None and self.current is not None:
            self.current[self.row].append((self.span_class, data))


def test_the_report_holds_every_worst_line_with_picture_and_alignment(tmp_path):
    report = tmp_path / "report.html"
    per_line = tmp_path / "lines.jsonl"
    done = CliRunner().invoke(app, ["eval", "latin-print", str(REPO / "data/ocr/test-unseen-fonts.jsonl"),
                                    "--beam", "1", "--report", str(report), "--per-line", str(per_line),
                                    "--worst", "25"])
    assert done.exit_code == 0, done.output
    parser = ReportParser()
    parser.feed(report.read_text(encoding="utf-8"))
    assert parser.tables >= 4  # summary, by length, by source, confusions
    assert all(source.startswith("data:image/png;base64,") for source in parser.sources)  # nothing fetched
    scored = {row["id"]: row for row in map(json.loads, per_line.read_text().splitlines())}
    wrong = sorted((r for r in scored.values() if r["char_errors"]), key=lambda r: (-r["cer"], -r["char_errors"],
                                                                                     r["id"]))[:25]
    assert [line for line in parser.lines] == [r["id"] for r in wrong]
    for line_id, line in parser.lines.items():
        picture = Image.open(io.BytesIO(base64.b64decode(line["img"].split(",", 1)[1])))
        assert picture.height == 48 and picture.width > 48
        reference = "".join(text for kind, text in line["reference"] if kind != "ins")
        hypothesis = "".join(text for kind, text in line["hypothesis"] if kind != "del")
        assert (reference, hypothesis) == (scored[line_id]["reference"], scored[line_id]["hypothesis"])
        assert any(kind != "ok" for kind, _ in line["reference"])  # the difference is marked


@given(st.text(alphabet="abcd ", max_size=12), st.text(alphabet="abcd ", max_size=12))
def test_alignment_rebuilds_both_strings_and_costs_the_edit_distance(reference, hypothesis):
    import editdistance

    pairs = alignment(reference, hypothesis)
    assert "".join(r for r, _ in pairs if r is not None) == reference
    assert "".join(h for _, h in pairs if h is not None) == hypothesis
    assert sum(r != h for r, h in pairs) == editdistance.eval(reference, hypothesis) == edit_ops(reference,
                                                                                                  hypothesis).errors
