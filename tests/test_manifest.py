from __future__ import annotations

import gzip
import json
import os

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ctctool.errors import ManifestError
from ctctool.manifest import (
    ManifestItem,
    guess_kind,
    import_gt_txt,
    import_tsv,
    manifest_stats,
    read_manifest,
    read_manifest_text,
    validate_manifest,
    write_manifest,
)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_reads_fields_resolves_paths_and_keeps_extras(tmp_path):
    m = write_lines(tmp_path / "m.jsonl", [
        json.dumps({"path": "a/x.png", "text": "héllo", "speaker": "s1", "bbox": [1, 2, 30, 40]}),
        "",
        json.dumps({"path": "clip.flac", "text": "one two", "offset": 0.5, "duration": 1.25, "id": "c1"}),
    ])
    first, second = read_manifest(m)
    assert first.resolved_path == str(tmp_path / "a" / "x.png")
    assert first.kind == "image" and first.bbox == (1, 2, 30, 40)
    assert first.extra == {"speaker": "s1"}
    assert first.id == "x" and first.source == f"{m}:1"
    assert second.kind == "audio" and second.offset == 0.5 and second.duration == 1.25 and second.id == "c1"
    assert second.source == f"{m}:3"


@pytest.mark.parametrize("alias", ["audio_filepath", "file_name", "image"])
def test_path_aliases(tmp_path, alias):
    m = write_lines(tmp_path / "m.jsonl", [json.dumps({alias: "x.wav", "text": "a"})])
    (item,) = read_manifest(m)
    assert item.path == "x.wav" and item.extra == {}
    assert item.to_record()["path"] == "x.wav" and alias not in item.to_record()


def test_default_ids_are_unique_and_explicit_duplicates_fail(tmp_path):
    m = write_lines(tmp_path / "m.jsonl", [json.dumps({"path": p}) for p in ("a/l.png", "b/l.png", "l.gt.png")])
    assert [i.id for i in read_manifest(m)] == ["l", "l-2", "l-3"]
    dup = write_lines(tmp_path / "d.jsonl", [json.dumps({"path": "a.png", "id": "k"}),
                                             json.dumps({"path": "b.png", "id": "k"})])
    with pytest.raises(ManifestError, match=r"d\.jsonl:2: id: 'k' already used at .*d\.jsonl:1"):
        read_manifest(dup)


@pytest.mark.parametrize("line, field, reason", [
    ("{not json", None, "not valid JSON"),
    ("[1, 2]", None, "expected a JSON object"),
    ('{"text": "a"}', "path", "missing"),
    ('{"path": ""}', "path", "non-empty string"),
    ('{"path": "a.png", "image": "b.png"}', "image", "conflicts"),
    ('{"path": "a.png", "text": 3}', "text", "expected a string"),
    ('{"path": "a.png", "id": ""}', "id", "non-empty"),
    ('{"path": "a.png", "kind": "video"}', "kind", "expected 'image' or 'audio'"),
    ('{"path": "a.wav", "offset": -1}', "offset", ">= 0"),
    ('{"path": "a.wav", "duration": 0}', "duration", "> 0"),
    ('{"path": "a.wav", "duration": "long"}', "duration", "finite number"),
    ('{"path": "a.png", "bbox": [1, 2, 3]}', "bbox", "expected"),
    ('{"path": "a.png", "bbox": [5, 0, 2, 9]}', "bbox", "x0 < x1"),
])
def test_every_bad_line_names_file_line_and_field(tmp_path, line, field, reason):
    m = write_lines(tmp_path / "m.jsonl", ['{"path": "ok.png", "text": "fine"}', line])
    with pytest.raises(ManifestError) as info:
        read_manifest(m)
    error = info.value
    assert error.line == 2 and error.field == field and reason in error.reason
    assert str(error).startswith(f"{m}:2: ")


def test_file_level_errors(tmp_path):
    with pytest.raises(ManifestError, match="no such file"):
        read_manifest(tmp_path / "missing.jsonl")
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"path": "a.png", "text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin1\.jsonl:1: not UTF-8 text \(invalid continuation byte at column 31\)"):
        read_manifest(bad)
    # a bad byte deep in a big file names its line: the decoder once counted bytes per 8 KB chunk
    bad.write_bytes(b'{"path": "a.png", "text": "ok"}\n' * 5000 + '{"path": "b.png", "text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin1\.jsonl:5001: not UTF-8 text"):
        read_manifest(bad)
    report = validate_manifest(str(bad), check_files=False)  # one bad line, every other line still checked
    assert report.items == 5000 and report.errors == (f"{bad}:5001: not UTF-8 text (invalid continuation byte "
                                                        "at column 31)",)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"path": "a.png"}\n' * 50)[:30])
    with pytest.raises(ManifestError, match="cannot read"):
        read_manifest(broken)


def test_gzip_and_round_trip_into_another_folder(tmp_path):
    m = write_lines(tmp_path / "m.jsonl", [
        json.dumps({"path": "img/a.png", "text": "x", "extra": {"k": [1, 2]}, "id": "a"}),
        json.dumps({"path": "/abs/b.png", "text": "y", "id": "b", "kind": "image"}),
    ])
    items = read_manifest(m)
    out = tmp_path / "sub" / "copy.jsonl.gz"
    assert write_manifest(items, out) == 2
    again = read_manifest(out)
    assert [i.resolved_path for i in again] == [i.resolved_path for i in items]
    assert [i.extra for i in again] == [{"extra": {"k": [1, 2]}}, {}]
    assert json.loads(gzip.decompress(out.read_bytes()).splitlines()[0])["path"] == os.path.join("..", "img", "a.png")


records = st.fixed_dictionaries(
    {"path": st.from_regex(r"[a-z]{1,8}\.(png|wav)", fullmatch=True), "text": st.text(max_size=30)},
    optional={"speaker": st.text(max_size=5), "duration": st.floats(0.01, 100),
              "bbox": st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(1, 50), st.integers(1, 50))
              .map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])})


@settings(max_examples=50, deadline=None)
@given(st.lists(records, max_size=8))
@example([{"path": "a.png", "text": "line\u2028separator"}, {"path": "b.wav", "text": "next\x85line\u2029end\r"}])
def test_round_trip_property(tmp_path_factory, recs):
    """Through a file and through stdin: our writer leaves U+2028, U+2029 and NEL unescaped
    (valid JSON), so only LF may end a manifest line (stdin split at them and broke lines)."""
    folder = tmp_path_factory.mktemp("rt")
    m = write_lines(folder / "m.jsonl", [json.dumps(r) for r in recs])
    items = read_manifest(m)
    write_manifest(items, folder / "out.jsonl")
    again = read_manifest(folder / "out.jsonl")
    from_stdin = read_manifest_text((folder / "out.jsonl").read_text(encoding="utf-8"), root=str(folder))
    for copy in (again, from_stdin):
        assert [(i.path, i.text, i.id, i.duration, i.bbox, i.extra) for i in copy] == \
               [(i.path, i.text, i.id, i.duration, i.bbox, i.extra) for i in items]


def test_validate_reports_every_problem_with_lines(tmp_path):
    from PIL import Image

    Image.new("L", (20, 10), 255).save(tmp_path / "good.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    m = write_lines(tmp_path / "m.jsonl", [
        '{"path": "good.png", "text": "a"}',
        '{"path": "missing.png", "text": "b"}',
        "{oops",
        '{"path": "corrupt.png", "text": "c"}',
        '{"path": "good.png", "text": "d", "bbox": [0, 0, 30, 5], "id": "g2"}',
        '{"path": "good.png"}',
    ])
    report = validate_manifest(str(m), need_text=True)
    assert not report.ok
    lines = [int(e.split(":")[1]) for e in report.errors]
    assert lines == [2, 3, 4, 5, 6]
    assert "path: no such file" in report.errors[0]
    assert "not valid JSON" in report.errors[1]
    assert "cannot read image" in report.errors[2]
    assert "bbox" in report.errors[3] and "outside the 20x10 image" in report.errors[3]
    assert "text: missing" in report.errors[4]


def test_stats(tmp_path):
    m = write_lines(tmp_path / "m.jsonl", [json.dumps({"path": f"{i}.png", "text": "ab" * i}) for i in range(1, 5)])
    stats = manifest_stats(read_manifest(m))
    assert stats.items == 4 and stats.characters == {"a": 10, "b": 10}
    assert (stats.min_length, stats.max_length, stats.mean_length) == (2, 8, 5.0)
    assert sum(count for _, _, count in stats.length_histogram) == 4


def test_import_gt_txt(tmp_path):
    from PIL import Image

    for name in ("a.png", "b.bin.png", "c.png"):
        Image.new("L", (10, 10)).save(tmp_path / name)
    (tmp_path / "a.gt.txt").write_text("first line\n", encoding="utf-8")
    (tmp_path / "b.gt.txt").write_text("second", encoding="utf-8")
    result = import_gt_txt(str(tmp_path))
    assert [(i.id, i.text) for i in result.items] == [("a", "first line"), ("b", "second")]
    assert len(result.skipped) == 1 and "c.png" in result.skipped[0]
    (tmp_path / "c.gt.txt").write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="more than one line"):
        import_gt_txt(str(tmp_path))


def test_import_tsv(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("imgs/1.jpg\thello world\nimgs/2.jpg\ttab\tinside\n", encoding="utf-8")
    items = import_tsv(str(lst)).items
    assert [(i.resolved_path, i.text) for i in items] == [
        (str(tmp_path / "imgs" / "1.jpg"), "hello world"), (str(tmp_path / "imgs" / "2.jpg"), "tab\tinside")]
    lst.write_text("imgs/1.jpg hello\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"list\.txt:1: text: expected 'path<TAB>label'"):
        import_tsv(str(lst))


def test_guess_kind():
    assert guess_kind("x.PNG") == "image" and guess_kind("x.flac") == "audio" and guess_kind("x.txt") is None
    assert ManifestItem(path="x").where == "x"
