"""Output formats for decode and align, keyed by name (whisper's ResultWriter idea).

Every writer takes an iterable of ItemResult and a text stream; stdout carries results only.
TSV positions are integers (pixels, or milliseconds for audio) so a locale's decimal comma
cannot break parsing.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Iterable
from typing import TextIO

from .errors import OptionError
from .results import ItemResult, Span

DECODE_FORMATS = ("text", "tsv", "jsonl", "ctm", "page", "alto")
ALIGN_FORMATS = ("jsonl", "tsv", "ctm", "textgrid", "hocr")


def _escape_tsv(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _position(value: float, unit: str) -> int:
    """Integer pixels, or integer milliseconds for seconds."""
    return round(value * 1000) if unit == "s" else round(value)


def _span_json(span: Span, unit: str) -> dict:
    digits = 3 if unit == "s" else 1
    return {"token": span.token, "start": round(span.start, digits), "end": round(span.end, digits),
            "confidence": round(span.confidence, 4)}


# ---------------------------------------------------------------- decode


def write_decode_text(results: Iterable[ItemResult], out: TextIO) -> None:
    for result in results:
        out.write(("" if result.error else result.text.replace("\n", " ")) + "\n")
        out.flush()


def write_decode_tsv(results: Iterable[ItemResult], out: TextIO, *, header: bool = True) -> None:
    if header:  # --shard K/N with K > 1 leaves it out, so the shards' outputs concatenate
        out.write("id\tpath\ttext\tconfidence\terror\n")
    for result in results:
        out.write("\t".join([_escape_tsv(result.id), _escape_tsv(result.path), _escape_tsv(result.text),
                             f"{result.confidence:.4f}" if not result.error else "",
                             _escape_tsv(result.error or "")]) + "\n")
        out.flush()


def write_decode_jsonl(results: Iterable[ItemResult], out: TextIO) -> None:
    for result in results:
        if result.error:
            record = {"id": result.id, "path": result.path, "error": result.error}
        else:
            record = {"id": result.id, "path": result.path, "text": result.text, "score": round(result.score, 4),
                      **({"lm_score": round(result.lm_score, 4)} if result.lm_score else {}),
                      "confidence": round(result.confidence, 4), "unit": result.unit,
                      "words": [_span_json(s, result.unit) for s in result.words],
                      "chars": [_span_json(s, result.unit) for s in result.chars]}
            if result.nbest:
                record["nbest"] = [{"text": t, "score": round(s, 4)} for t, s in result.nbest]
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()


# ---------------------------------------------------------------- align


def write_align_jsonl(results: Iterable[ItemResult], out: TextIO) -> None:
    for result in results:
        if result.error:
            record = {"id": result.id, "path": result.path, "error": result.error}
        else:
            record = {"id": result.id, "path": result.path, "text": result.text, "score": round(result.score, 4),
                      "unit": result.unit, "aligned": result.aligned,
                      **({"line_bbox": list(result.line_bbox)} if result.line_bbox else {}),
                      "words": [_span_json(s, result.unit) for s in result.words],
                      "chars": [_span_json(s, result.unit) for s in result.chars]}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()


def write_align_tsv(results: Iterable[ItemResult], out: TextIO, *, header: bool = True) -> None:
    header_written = not header
    for result in results:
        if result.error:
            continue
        if not header_written:
            suffix = "ms" if result.unit == "s" else "px"
            out.write(f"id\tlevel\tstart_{suffix}\tend_{suffix}\ttoken\tconfidence\n")
            header_written = True
        for level, spans in (("word", result.words), ("char", result.chars)):
            for span in spans:
                out.write(f"{_escape_tsv(result.id)}\t{level}\t{_position(span.start, result.unit)}\t"
                          f"{_position(span.end, result.unit)}\t{_escape_tsv(span.token)}\t{span.confidence:.4f}\n")
        out.flush()


def _require_seconds(result: ItemResult, name: str) -> None:
    if result.unit != "s":
        raise OptionError(f"--format {name} is for audio (times in seconds); use jsonl, tsv or hocr for images")


def write_align_ctm(results: Iterable[ItemResult], out: TextIO) -> None:
    """NIST CTM: ``<file> <channel> <start> <duration> <word> <confidence>``, sorted by file and start."""
    for result in sorted((r for r in results if not r.error), key=lambda r: r.id):
        _require_seconds(result, "ctm")
        for span in sorted(result.words, key=lambda s: s.start):
            out.write(f"{result.id} 1 {span.start:.3f} {max(0.0, span.end - span.start):.3f} "
                      f"{span.token} {span.confidence:.4f}\n")


def _textgrid_tier(name: str, spans: tuple[Span, ...], xmin: float, xmax: float) -> list[str]:
    intervals: list[tuple[float, float, str]] = []
    cursor = xmin
    for span in spans:  # gaps between spans become empty intervals, as Praat expects
        start, end = max(span.start, cursor), max(span.end, cursor)
        if start > cursor:
            intervals.append((cursor, start, ""))
        intervals.append((start, end, span.token))
        cursor = end
    if cursor < xmax or not intervals:
        intervals.append((cursor, xmax, ""))
    lines = ['        class = "IntervalTier"', f'        name = "{name}"', f"        xmin = {xmin}",
             f"        xmax = {xmax}", f"        intervals: size = {len(intervals)}"]
    for number, (start, end, text) in enumerate(intervals, start=1):
        lines += [f"        intervals [{number}]:", f"            xmin = {start}", f"            xmax = {end}",
                  '            text = "{}"'.format(text.replace('"', '""'))]
    return lines


def textgrid_document(result: ItemResult) -> str:
    """Praat's long TextGrid format with a words tier and a chars tier."""
    xmin, xmax = result.source_extent
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", f"xmin = {xmin}", f"xmax = {xmax}",
             "tiers? <exists>", "size = 2", "item []:"]
    for number, (name, spans) in enumerate((("words", result.words), ("chars", result.chars)), start=1):
        lines.append(f"    item [{number}]:")
        lines += _textgrid_tier(name, spans, xmin, xmax)
    return "\n".join(lines) + "\n"


def write_textgrids(results: Iterable[ItemResult], out_dir: str) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for result in results:
        if result.error:
            continue
        _require_seconds(result, "textgrid")
        path = os.path.join(out_dir, safe_name(result.id) + ".TextGrid")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(textgrid_document(result))
        written.append(path)
    return written


def safe_name(item_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in item_id) or "item"


def write_align_hocr(results: Iterable[ItemResult], out: TextIO) -> None:
    """One hOCR document: an ocr_page per input, an ocr_line, ocrx_word spans with character boxes."""
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
              '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">\n<head>\n<title>ctctool alignment</title>\n'
              '<meta http-equiv="Content-Type" content="text/html; charset=utf-8"/>\n'
              '<meta name="ocr-system" content="ctctool"/>\n'
              '<meta name="ocr-capabilities" content="ocr_page ocr_line ocrx_word ocrx_cinfo"/>\n</head>\n<body>\n')
    for number, result in enumerate(results, start=1):
        if result.error:
            continue
        if result.unit != "px":
            raise OptionError("--format hocr is for images; use ctm, textgrid, jsonl or tsv for audio")
        x0, y0, x1, y1 = result.line_bbox or (0, 0, 0, 0)
        page = result.page_size or (x1, y1)
        out.write(f'<div class="ocr_page" id="page_{number}" title="image {html.escape(result.path, quote=True)!s}; '
                  f'bbox 0 0 {page[0]} {page[1]}">\n')
        out.write(f' <span class="ocr_line" id="line_{number}" title="bbox {x0} {y0} {x1} {y1}">')
        for w, word in enumerate(result.words, start=1):
            chars = [c for c in result.chars if c.start >= word.start and c.end <= word.end and not c.token.isspace()]
            out.write(f'<span class="ocrx_word" id="word_{number}_{w}" title="bbox {round(word.start)} {y0} '
                      f'{round(word.end)} {y1}; x_wconf {round(100 * word.confidence)}">')
            for c in chars:
                out.write(f'<span class="ocrx_cinfo" title="x_bboxes {round(c.start)} {y0} {round(c.end)} {y1}; '
                          f'x_conf {100 * c.confidence:.1f}">{html.escape(c.token)}</span>')
            out.write("</span> ")
        out.write("</span>\n</div>\n")
    out.write("</body>\n</html>\n")


STREAM_WRITERS: dict[str, Callable[[Iterable[ItemResult], TextIO], None]] = {
    "decode:text": write_decode_text,
    "decode:tsv": write_decode_tsv,
    "decode:jsonl": write_decode_jsonl,
    "decode:ctm": write_align_ctm,  # the recognized words with their times: the same CTM
    "align:jsonl": write_align_jsonl,
    "align:tsv": write_align_tsv,
    "align:ctm": write_align_ctm,
    "align:hocr": write_align_hocr,
}


# Formats that only make sense for one modality: "s" (audio, times) or "px" (images, boxes).
FORMAT_UNITS = {"align:ctm": "audio", "decode:ctm": "audio", "align:textgrid": "audio", "align:hocr": "image", "align:page": "image",
                "align:alto": "image", "decode:page": "image", "decode:alto": "image"}


def check_format(command: str, fmt: str, modality: str) -> None:
    """Refuse a format the model's modality cannot fill, before any input is read."""
    needed = FORMAT_UNITS.get(f"{command}:{fmt}")
    if needed is not None and needed != modality:
        hint = {("align", "image"): "jsonl, tsv, hocr, page or alto for images",
                ("align", "audio"): "jsonl, tsv, ctm or textgrid for audio",
                ("decode", "image"): "text, tsv, jsonl, page or alto for images",
                ("decode", "audio"): "text, tsv, jsonl or ctm for audio"}[(command, modality)]
        raise OptionError(f"--format {fmt} is for {needed} models and this one reads {modality}; use {hint}")


def get_writer(command: str, fmt: str) -> Callable[[Iterable[ItemResult], TextIO], None]:
    try:
        return STREAM_WRITERS[f"{command}:{fmt}"]
    except KeyError:
        formats = DECODE_FORMATS if command == "decode" else ALIGN_FORMATS
        raise OptionError(f"unknown --format {fmt!r} for {command}; choose from {', '.join(formats)}") from None


# ---------------------------------------------------------------- pictures


def draw_alignment_png(image, result: ItemResult, path: str) -> None:
    """The line image with a box per character (alternating colours) and a bar per word beneath."""
    from PIL import Image, ImageDraw

    origin = result.line_bbox[0] if result.line_bbox else 0
    canvas = Image.new("RGB", (image.width, image.height + 6), "white")
    canvas.paste(image.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    colours = ((220, 40, 40), (30, 110, 230))
    for index, span in enumerate(c for c in result.chars if not c.token.isspace()):
        left, right = span.start - origin, max(span.start - origin, span.end - origin - 1)
        draw.rectangle((left, 0, right, image.height - 1), outline=colours[index % 2])
    for span in result.words:
        draw.rectangle((span.start - origin, image.height + 1, span.end - origin - 1, image.height + 4),
                       fill=(20, 160, 60))
    canvas.save(path)


def draw_spectrogram_png(features, result: ItemResult, path: str) -> None:
    """The log-mel spectrogram (low frequencies at the bottom) with each word's span marked and named."""
    import numpy as np
    from PIL import Image, ImageDraw

    values = features.values
    scale_x, scale_y, label_h = 3, 2, 14  # pixels per frame, per mel band; label strip height
    gray = np.clip((values[::-1] + 3.0) / 6.0 * 255.0, 0, 255).astype(np.uint8)
    picture = Image.fromarray(gray, mode="L").resize((values.shape[1] * scale_x, values.shape[0] * scale_y))
    canvas = Image.new("RGB", (picture.width, picture.height + label_h), "white")
    canvas.paste(picture.convert("RGB"), (0, label_h))
    draw = ImageDraw.Draw(canvas)
    axis = features.axis
    for index, span in enumerate(result.words):
        left = (span.start - axis.origin) / axis.step * scale_x
        right = (span.end - axis.origin) / axis.step * scale_x
        colour = ((230, 60, 40), (40, 120, 240))[index % 2]
        draw.rectangle((left, label_h, right, canvas.height - 1), outline=colour, width=2)
        draw.text((left + 2, 1), span.token, fill=colour)
    canvas.save(path)
