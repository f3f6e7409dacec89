"""Dataset folders to manifests: Kaldi data directories and Hugging Face imagefolder /
audiofolder layouts. Every problem names the file, the line and the field.

Kaldi: ``wav.scp`` (``<recording> <path>``; command pipes ``... |`` are refused: ctctool
reads files, it does not run commands), ``text`` (``<utterance> <transcript>``), optional
``segments`` (``<utterance> <recording> <start> <end>`` seconds: offset and duration) and
``utt2spk`` (kept as ``speaker``). Without ``segments`` an utterance is a whole recording.

Hugging Face: ``metadata.csv`` or ``metadata.jsonl`` beside the files, a ``file_name`` column
and a transcript column (``--text-column``; by default the first of ``text``,
``transcription``, ``sentence``, ``label`` that exists); other columns are kept.
"""

from __future__ import annotations

import csv
import io
import json
import os

from .errors import ManifestError
from .manifest import ImportResult, ManifestItem, _assign_ids, guess_kind, read_utf8_lines

TEXT_COLUMNS = ("text", "transcription", "sentence", "label")


def _table(path: str, fields: int, *, rest: bool = False, empty_ok: bool = False) -> dict[str, tuple[list[str], int]]:
    """``key -> (values, line number)`` of a Kaldi table; with ``rest`` the second field is the
    rest of the line (a transcript or a path with spaces), which only ``empty_ok`` allows to be
    empty (an empty transcript)."""
    table: dict[str, tuple[list[str], int]] = {}
    for number, line in enumerate(read_utf8_lines(path, "a Kaldi table"), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1) if rest else line.split()
        if rest and empty_ok and len(parts) == 1:
            parts.append("")
        if len(parts) != fields:
            raise ManifestError(path, number, None, f"expected {fields} fields, found {len(parts)}")
        if parts[0] in table:
            raise ManifestError(path, number, "id", f"{parts[0]!r} already listed at line {table[parts[0]][1]}")
        table[parts[0]] = (parts[1:], number)
    return table


def import_kaldi(folder: str) -> ImportResult:
    if not os.path.isdir(folder):
        raise ManifestError(folder, None, None, "not a folder")
    scp_path, text_path = os.path.join(folder, "wav.scp"), os.path.join(folder, "text")
    recordings = _table(scp_path, 2, rest=True)
    for recording, ((path,), number) in recordings.items():
        if path.rstrip().endswith("|") or path.lstrip().startswith(("sox ", "ffmpeg ", "flac ")):
            raise ManifestError(scp_path, number, "path", f"{recording}: a command pipe ({path[:50]!r}); ctctool "
                                "reads audio files, it does not run commands: convert the audio to files first")
    texts = _table(text_path, 2, rest=True, empty_ok=True)
    speakers = _table(os.path.join(folder, "utt2spk"), 2) if os.path.exists(os.path.join(folder, "utt2spk")) \
        else {}
    segments_path = os.path.join(folder, "segments")
    items, skipped = [], []
    if os.path.exists(segments_path):
        segments = _table(segments_path, 4)
        for utterance, ((recording, start, end), number) in segments.items():
            if recording not in recordings:
                raise ManifestError(segments_path, number, "recording", f"{recording!r} is not in wav.scp")
            try:
                offset, stop = float(start), float(end)
            except ValueError:
                raise ManifestError(segments_path, number, "start", "start and end must be seconds") from None
            if not 0 <= offset < stop:
                raise ManifestError(segments_path, number, "end", f"need 0 <= start < end, got {start} {end}")
            items.append(_kaldi_item(folder, utterance, recordings[recording][0][0], texts, speakers, skipped,
                                     f"{segments_path}:{number}", offset=offset, duration=stop - offset))
    else:
        for utterance, ((path,), number) in recordings.items():
            items.append(_kaldi_item(folder, utterance, path, texts, speakers, skipped, f"{scp_path}:{number}"))
    return ImportResult(_assign_ids([item for item in items if item is not None]), tuple(skipped))


def _kaldi_item(folder, utterance, path, texts, speakers, skipped, source, offset=None, duration=None):
    if utterance not in texts:
        skipped.append(f"{source}: utterance {utterance} has no line in text")
        return None
    extra = {"speaker": speakers[utterance][0][0]} if utterance in speakers else {}
    return ManifestItem(path=path.strip(), root=os.path.abspath(folder), text=texts[utterance][0][0], id=utterance,
                        kind=guess_kind(path.strip()) or "audio", offset=offset, duration=duration, extra=extra,
                        source=source)


def import_hf(folder: str, text_column: str | None = None) -> ImportResult:
    if not os.path.isdir(folder):
        raise ManifestError(folder, None, None, "not a folder")
    rows, source = _hf_rows(folder)
    if not rows:
        raise ManifestError(source, None, None, "holds no rows")
    columns = set(rows[0][0])
    if "file_name" not in columns:
        raise ManifestError(source, 1, "file_name", "the metadata needs a file_name column")
    column = text_column or next((c for c in TEXT_COLUMNS if c in columns), None)
    if column is None or column not in columns:
        raise ManifestError(source, 1, text_column or "text",
                            f"no transcript column (have: {', '.join(sorted(columns))}); name it with --text-column")
    items = []
    for row, number in rows:
        name = row.get("file_name")
        if not isinstance(name, str) or not name.strip():
            raise ManifestError(source, number, "file_name", "empty")
        text = row.get(column)
        if text is not None and not isinstance(text, str):
            raise ManifestError(source, number, column, f"expected text, got {type(text).__name__}")
        extra = {key: value for key, value in row.items() if key not in ("file_name", column)}
        items.append(ManifestItem(path=name, root=os.path.abspath(folder), text=text, kind=guess_kind(name),
                                  extra=extra, source=f"{source}:{number}"))
    return ImportResult(_assign_ids(items), ())


def _hf_rows(folder: str) -> tuple[list[tuple[dict, int]], str]:
    jsonl, table = os.path.join(folder, "metadata.jsonl"), os.path.join(folder, "metadata.csv")
    if os.path.exists(jsonl):
        rows = []
        for number, line in enumerate(read_utf8_lines(jsonl, "metadata.jsonl"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(jsonl, number, None, f"not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ManifestError(jsonl, number, None, "expected a JSON object")
            rows.append((row, number))
        return rows, jsonl
    if os.path.exists(table):
        # Spreadsheets save CSV with a byte-order mark and CRLF ends; quoted fields may span lines
        reader = csv.DictReader(io.StringIO("\n".join(read_utf8_lines(table, "metadata.csv")), newline=""))
        rows = []
        try:
            for row in reader:
                rows.append((dict(row), reader.line_num))
        except csv.Error as exc:
            raise ManifestError(table, reader.line_num, None, f"not valid CSV ({exc})") from None
        return rows, table
    raise ManifestError(folder, None, None, "no metadata.jsonl or metadata.csv (an imagefolder / audiofolder layout)")
