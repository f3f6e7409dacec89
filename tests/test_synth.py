"""ctctool synth: deterministic, parallel-invariant rendering that never writes a wrong label."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFont
from typer.testing import CliRunner

from ctctool.cli import app
from ctctool.manifest import read_manifest
from ctctool.synth import SynthConfig, parse_levels, synthesize, text_for
from ctctool.synth.corpus import normalize, parse_cut, pieces, read_corpus
from ctctool.synth.degrade import LEVELS, binarize, crop, otsu_threshold
from ctctool.synth.fonts import Coverage, FontFace, font_files, open_faces
from ctctool.synth.render import render_line

runner = CliRunner()

TEXTS = ["Hello world, this is a line.", "The quick brown fox: 42 dogs!", "Zebra (1999) & co."]


@pytest.fixture(scope="module")
def font_dir(tmp_path_factory) -> Path:
    """Pillow's own bundled face (Aileron, basic Latin), written out as a font file: no system fonts."""
    folder = tmp_path_factory.mktemp("fonts")
    (folder / "Aileron.ttf").write_bytes(ImageFont.load_default(size=20).font_bytes)
    (folder / "sub").mkdir()
    (folder / "sub" / "Broken.ttf").write_bytes(b"this is not a font" * 10)
    return folder


@pytest.fixture(scope="module")
def face(font_dir) -> FontFace:
    faces, _ = open_faces([str(font_dir / "Aileron.ttf")])
    return faces[0]


def _corpus(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_fonts_from_folder_list_and_commas_with_broken_files_reported(font_dir, tmp_path):
    files = font_files(str(font_dir))
    assert [Path(f).name for f in files] == ["Aileron.ttf", "Broken.ttf"]
    listing = tmp_path / "fonts.txt"
    listing.write_text(f"# my fonts\n{font_dir / 'Aileron.ttf'}\n", encoding="utf-8")
    assert font_files(f"{listing},{font_dir / 'Aileron.ttf'}") == [str(font_dir / "Aileron.ttf")]
    faces, problems = open_faces(files)
    assert [f.name for f in faces] == ["Aileron"]
    assert len(problems) == 1 and problems[0].path.endswith("Broken.ttf") and "FreeType" in problems[0].reason


def test_coverage_knows_tofu_controls_and_spaces(face):
    coverage = Coverage(face)
    assert all(coverage.draws(ch) for ch in "Aaz09,.!")
    assert coverage.draws(" ")
    assert not coverage.draws("\u4e2d")  # a CJK ideograph: Aileron draws its .notdef box
    assert not coverage.draws("\x07") and not coverage.draws("\u200b") and not coverage.draws("\t")
    assert coverage.missing("ab\u4e2dc") == {"\u4e2d"}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path, face):
    corpus = read_corpus([str(_corpus(tmp_path, TEXTS))])
    config = SynthConfig(height=32, degrade=tuple(LEVELS), seed=7, samples=12)
    synthesize(corpus, [face], str(tmp_path / "one"), config, workers=1)
    synthesize(corpus, [face], str(tmp_path / "two"), config, workers=2)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")
    synthesize(corpus, [face], str(tmp_path / "other"), SynthConfig(height=32, degrade=tuple(LEVELS), seed=8,
                                                                     samples=12))
    assert _digest(tmp_path / "one") != _digest(tmp_path / "other")


def test_manifest_reads_back_with_every_image_at_the_height(tmp_path, face):
    corpus = read_corpus([str(_corpus(tmp_path, TEXTS))])
    report = synthesize(corpus, [face], str(tmp_path / "out"), SynthConfig(height=40, degrade=("scan",), samples=7))
    items = read_manifest(str(tmp_path / "out" / "manifest.jsonl"))
    assert report.written == len(items) == 7
    assert {item.text for item in items} == set(TEXTS)  # 7 samples cycle through all 3 texts
    for item in items:
        with Image.open(item.resolved_path) as image:
            assert image.mode == "L" and image.height == 40 and image.width > 3 * 40
    assert not (tmp_path / "out" / "manifest.jsonl.partial").exists()


def test_text_no_face_draws_is_skipped_and_reported_never_drawn(tmp_path, face):
    lines = ["plain text", "has \u4e2d in it", "", "more plain text"]
    corpus = read_corpus([str(_corpus(tmp_path, lines))])
    assert corpus.empty == 1
    report = synthesize(corpus, [face], str(tmp_path / "out"), SynthConfig(height=32))
    texts = [item.text for item in read_manifest(str(tmp_path / "out" / "manifest.jsonl"))]
    assert texts == ["plain text", "more plain text"]
    assert report.no_face == 1 and "\u4e2d" in report.missing_examples[0]


def test_clean_level_is_ink_on_white_and_binarize_is_bitonal(face):
    level = LEVELS["none"]
    pixels = render_line("Ink 123", face, 32, level, random.Random(0))
    assert pixels.shape[0] == 32 and pixels.max() == 255 and pixels.min() < 40
    assert (pixels == 255).mean() > 0.5  # mostly white paper
    forced = LEVELS["scan"].__class__(**{**LEVELS["scan"].__dict__, "binarize": 1.0})
    grey = np.linspace(0, 1, 400, dtype=np.float32).reshape(8, 50)
    assert set(np.unique(binarize(grey, random.Random(1), forced))) <= {0.0, 1.0}


def test_otsu_threshold_separates_two_modes():
    values = np.concatenate([np.full(500, 0.1), np.full(1500, 0.85)]).astype(np.float32)
    assert 0.1 < otsu_threshold(values) < 0.85


@settings(max_examples=60)
@given(st.integers(0, 2**32 - 1), st.sampled_from(list(LEVELS)))
def test_crop_never_cuts_ink(seed, level_name):
    rng = np.random.default_rng(seed)
    mask = np.zeros((60, 200), dtype=np.float32)
    rows, cols = rng.integers(0, 60, 30), rng.integers(0, 200, 30)
    mask[rows, cols] = rng.uniform(0.1, 1.0, 30)
    out = crop(mask, random.Random(seed), LEVELS[level_name], line_top=20, line_bottom=40)
    assert np.isclose(out.sum(), mask.sum())


@settings(max_examples=80)
@given(st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=12), min_size=1, max_size=40),
       st.integers(1, 30), st.integers(0, 30))
def test_cut_pieces_keep_every_word_in_order_within_their_length(words, low, extra):
    high = low + extra
    rng = random.Random(0)
    out = pieces(words, iter(lambda: rng.randint(low, high), None))
    assert " ".join(out).split() == words
    assert all(len(piece) <= high or " " not in piece for piece in out)


@settings(max_examples=40)
@given(st.integers(1, 50), st.integers(0, 5))
def test_each_pass_draws_every_text_once(count, seed):
    for passes in range(2):
        drawn = [text_for(passes * count + i, count, seed) for i in range(count)]
        assert sorted(drawn) == list(range(count))


def test_corpus_from_manifest_and_long_lines_cut(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "a.png", "text": "  two   words "}) + "\n", encoding="utf-8")
    long_line = " ".join(["word"] * 100)  # 499 characters
    corpus = read_corpus([str(manifest), str(_corpus(tmp_path, [long_line]))])
    assert corpus.texts[0] == "two words" and corpus.long_cut == 1
    assert all(len(text) <= 150 for text in corpus.texts[1:]) and len(corpus.texts) == 1 + 4
    assert normalize("a\u00a0\tb\u0065\u0301") == "a b\u00e9"
    assert parse_cut("20-60") == (20, 60)


# ---------------------------------------------------------------- the command


def test_cli_writes_a_manifest_and_warns_about_broken_fonts(tmp_path, font_dir):
    corpus = _corpus(tmp_path, TEXTS)
    result = runner.invoke(app, ["synth", str(corpus), "-o", str(tmp_path / "out"), "--fonts", str(font_dir),
                                 "--n", "5", "--degrade", "light,heavy", "--workers", "1", "--height", "24"])
    assert result.exit_code == 0, result.output
    assert "Broken.ttf" in result.stderr and "5 lines" in result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and {row["degrade"] for row in rows} <= {"light", "heavy"}
    again = runner.invoke(app, ["synth", str(corpus), "-o", str(tmp_path / "out"), "--fonts", str(font_dir)])
    assert again.exit_code == 1 and "already exists" in again.stderr and "--overwrite" in again.stderr


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--degrade", "blurry"], 2, "--degrade: unknown level blurry"),
    (["--cut", "60-20"], 2, "--cut"),
    (["--fonts", "/nonexistent/font.ttf"], 1, "no such font file"),
])
def test_cli_bad_options_are_one_line_errors(tmp_path, font_dir, args, code, message):
    corpus = _corpus(tmp_path, TEXTS)
    base = ["synth", str(corpus), "-o", str(tmp_path / "out"), "--fonts", str(font_dir)]
    result = runner.invoke(app, base + args)
    assert result.exit_code == code and message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # a warning about Broken.ttf at most, then the error


def test_cli_empty_corpus_and_only_broken_fonts_fail_clearly(tmp_path, font_dir):
    empty = _corpus(tmp_path, ["", "   "])
    result = runner.invoke(app, ["synth", str(empty), "-o", str(tmp_path / "a"), "--fonts", str(font_dir)])
    assert result.exit_code == 1 and "no text" in result.stderr
    corpus = _corpus(tmp_path, TEXTS)
    result = runner.invoke(app, ["synth", str(corpus), "-o", str(tmp_path / "b"), "--fonts",
                                 str(font_dir / "sub")])
    assert result.exit_code == 1 and "no usable font face" in result.stderr


def test_levels_parse():
    assert parse_levels("all") == tuple(LEVELS)
    assert parse_levels("scan, heavy") == ("scan", "heavy")


def test_an_interrupted_run_keeps_the_lines_it_finished(tmp_path, face, monkeypatch):
    import ctctool.synth.render as render

    real = render.render_line
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 70:  # partway through the second chunk of 64
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(render, "render_line", flaky)
    corpus = read_corpus([str(_corpus(tmp_path, TEXTS))])
    with pytest.raises(KeyboardInterrupt):
        synthesize(corpus, [face], str(tmp_path / "out"), SynthConfig(height=24, samples=200), workers=1)
    partial = (tmp_path / "out" / "manifest.jsonl.partial").read_text().splitlines()
    assert len(partial) == 64 and all((tmp_path / "out" / json.loads(row)["path"]).exists() for row in partial)
