"""The shared manifest: JSON Lines (optionally gzip), one item per line, for images and audio.

Read, write, validate, summarise, and import from the formats peers use (image + ``.gt.txt``
sidecars, ``path<TAB>text`` lists). A bad line is always an error naming ``file:line: field``;
nothing is dropped silently.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ManifestError

# Fields with a meaning; everything else is carried along untouched in ``ManifestItem.extra``.
KNOWN_FIELDS = ("path", "text", "id", "kind", "offset", "duration", "bbox", "channel")
# Other tools' names for ``path``: NeMo, Hugging Face image/audio folders, generic.
PATH_ALIASES = ("audio_filepath", "file_name", "image")

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".pgm", ".ppm", ".pbm"}
)
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"})
KINDS = ("image", "audio")


def guess_kind(path: str) -> str | None:
    """``"image"`` or ``"audio"`` from the file extension, ``None`` when it says neither."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in AUDIO_EXTENSIONS:
        return "audio"
    return None


@dataclass(frozen=True)
class ManifestItem:
    """One line of a manifest, validated."""

    path: str  # as written in the manifest (relative paths resolve against ``root``)
    root: str = "."  # folder relative paths resolve against: the manifest's own folder
    text: str | None = None  # transcript; None for decode-only lists
    id: str = ""  # unique key within the manifest
    kind: str | None = None  # "image" / "audio"; None when neither given nor guessable
    offset: float | None = None  # audio segment start, seconds
    duration: float | None = None  # audio segment length, seconds
    bbox: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in page pixels
    channel: int | None = None  # audio: use this channel (0-based) instead of the mean of all
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    source: str = ""  # "manifest.jsonl:12", for error messages

    @property
    def resolved_path(self) -> str:
        if os.path.isabs(self.path):
            return self.path
        return os.path.normpath(os.path.join(self.root, self.path))

    @property
    def where(self) -> str:
        """How error messages name this item: the manifest line if any, else the file."""
        return self.source or self.path

    def to_record(self, out_dir: str | None = None) -> dict[str, Any]:
        """The JSON object for this item, with ``path`` relative to ``out_dir`` when given."""
        path = self.path
        if out_dir is not None and not os.path.isabs(self.path):
            path = os.path.relpath(self.resolved_path, out_dir)
        record: dict[str, Any] = {"path": path}
        if self.id:
            record["id"] = self.id
        if self.text is not None:
            record["text"] = self.text
        if self.kind is not None:
            record["kind"] = self.kind
        if self.offset is not None:
            record["offset"] = self.offset
        if self.duration is not None:
            record["duration"] = self.duration
        if self.bbox is not None:
            record["bbox"] = list(self.bbox)
        if self.channel is not None:
            record["channel"] = self.channel
        record.update(self.extra)
        return record


def _number(value: Any, source: str, line: int, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ManifestError(source, line, name, f"expected a finite number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ManifestError(source, line, name, f"must be {'>' if positive else '>='} 0, got {value!r}")
    return float(value)


def parse_record(record: Any, *, source: str, line: int, root: str) -> ManifestItem:
    """Validate one decoded JSON value into a ManifestItem (``id`` left empty when absent)."""
    if not isinstance(record, dict):
        raise ManifestError(source, line, None, f"expected a JSON object, got {type(record).__name__}")
    names = [name for name in ("path", *PATH_ALIASES) if name in record]
    if not names:
        raise ManifestError(source, line, "path", "missing (also looked for " + ", ".join(PATH_ALIASES) + ")")
    if len(names) > 1:
        raise ManifestError(source, line, names[1], f"conflicts with {names[0]!r}: give the file once")
    path_field = names[0]
    path = record[path_field]
    if not isinstance(path, str) or not path.strip():
        raise ManifestError(source, line, path_field, f"expected a non-empty string, got {path!r}")

    text = record.get("text")
    if text is not None and not isinstance(text, str):
        raise ManifestError(source, line, "text", f"expected a string, got {text!r}")

    item_id = record.get("id", "")
    if not isinstance(item_id, str) or ("id" in record and not item_id):
        raise ManifestError(source, line, "id", f"expected a non-empty string, got {item_id!r}")

    kind = record.get("kind")
    if kind is not None and kind not in KINDS:
        raise ManifestError(source, line, "kind", f"expected 'image' or 'audio', got {kind!r}")
    if kind is None:
        kind = guess_kind(path)

    offset = record.get("offset")
    if offset is not None:
        offset = _number(offset, source, line, "offset")
    duration = record.get("duration")
    if duration is not None:
        duration = _number(duration, source, line, "duration", positive=True)

    bbox = record.get("bbox")
    if bbox is not None:
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
        ):
            raise ManifestError(source, line, "bbox", f"expected [x0, y0, x1, y1], got {bbox!r}")
        x0, y0, x1, y1 = (int(round(v)) for v in bbox)
        if x0 < 0 or y0 < 0 or x1 <= x0 or y1 <= y0:
            raise ManifestError(source, line, "bbox", f"needs 0 <= x0 < x1 and 0 <= y0 < y1, got {bbox!r}")
        bbox = (x0, y0, x1, y1)

    channel = record.get("channel")
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or channel < 0):
        raise ManifestError(source, line, "channel", f"expected a channel number >= 0, got {channel!r}")

    extra = {k: v for k, v in record.items() if k not in KNOWN_FIELDS and k != path_field}
    return ManifestItem(
        path=path,
        root=root,
        text=text,
        id=item_id,
        kind=kind,
        offset=offset,
        duration=duration,
        bbox=bbox,
        channel=channel,
        extra=extra,
        source=f"{source}:{line}",
    )


def _raw_lines(path: str) -> Iterator[bytes]:
    """A manifest's lines as bytes (``.gz`` or plain), split at LF only: a transcript may hold
    U+2028 or NEL, which our writer leaves unescaped; a byte-order mark (Notepad) is dropped."""
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as handle:
        for number, raw in enumerate(handle, start=1):
            yield raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw


def _decoded(raw: bytes, source: str, number: int) -> str:
    """One line as text; decoded alone, so a byte that is not UTF-8 names its line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(source, number, None, f"not UTF-8 text ({exc.reason} at column {exc.start + 1})") from None


def read_utf8_lines(path: str, what: str) -> list[str]:
    """The lines of a UTF-8 text file, ends removed (LF or CRLF; a byte-order mark is dropped);
    errors name the file, and the line of a byte that is not UTF-8."""
    try:
        return [_decoded(raw.removesuffix(b"\n").removesuffix(b"\r"), path, number)
                for number, raw in enumerate(_raw_lines(path), start=1)]
    except FileNotFoundError:
        raise ManifestError(path, None, None, "no such file") from None
    except IsADirectoryError:
        raise ManifestError(path, None, None, f"is a folder, expected {what}") from None
    except (OSError, EOFError) as exc:
        raise ManifestError(path, None, None, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def _default_id(path: str) -> str:
    name = Path(path).name
    for suffix in (".gt", ".bin", ".nrm"):  # ocropus-style double extensions
        name = name.replace(suffix + ".", ".")
    return Path(name).stem or name


def _assign_ids(items: list[ManifestItem], default_id=None) -> list[ManifestItem]:
    """Fill missing ids with ``default_id(path)`` (the path stem), made unique with ``-2``, ``-3``...;
    explicit ids must be unique."""
    default_id = default_id or _default_id
    seen: dict[str, str] = {}
    for item in items:
        if item.id:
            if item.id in seen:
                raise ManifestError(item.source, None, "id", f"{item.id!r} already used at {seen[item.id]}")
            seen[item.id] = item.source
    result = []
    for item in items:
        if not item.id:
            base = default_id(item.path)
            candidate, n = base, 1
            while candidate in seen:
                n += 1
                candidate = f"{base}-{n}"
            seen[candidate] = item.source
            item = replace(item, id=candidate)
        result.append(item)
    return result


def iter_lines(lines: Iterable[str], *, source: str, root: str) -> Iterator[ManifestItem]:
    """Parse JSONL lines (blank lines are skipped); raises ManifestError at the first bad line."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ManifestError(source, number, None, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        yield parse_record(record, source=source, line=number, root=root)


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestItem]:
    """Every item of a manifest file (``.jsonl`` or ``.jsonl.gz``), ids filled in and checked unique."""
    path = os.fspath(path)
    source = path
    try:
        lines = (_decoded(raw, source, number) for number, raw in enumerate(_raw_lines(path), start=1))
        items = list(iter_lines(lines, source=source, root=os.path.dirname(os.path.abspath(path))))
    except FileNotFoundError:
        raise ManifestError(source, None, None, "no such file") from None
    except IsADirectoryError:
        raise ManifestError(source, None, None, "is a folder, expected a .jsonl manifest") from None
    except (OSError, EOFError) as exc:  # truncated or corrupt gzip
        raise ManifestError(source, None, None, f"cannot read: {exc}") from None
    return _assign_ids(items)


def read_manifest_text(text: str, *, source: str = "<stdin>", root: str = ".") -> list[ManifestItem]:
    return _assign_ids(list(iter_lines(text.removeprefix("\ufeff").split("\n"), source=source, root=root)))


def items_from_paths(paths: Iterable[tuple[str, str]], *, root: str) -> list[ManifestItem]:
    """Items for bare file paths (command-line arguments, or lines on stdin), given as (path, source).
    The id is the path itself, made unique (``a.png``, ``a.png-2``) when a path comes twice."""
    items = [ManifestItem(path=path, root=root, kind=guess_kind(path), source=source) for path, source in paths]
    return _assign_ids(items, default_id=lambda path: path)


def stream_path_items(paths: Iterable[tuple[str, str]], *, root: str) -> Iterator[ManifestItem]:
    """``items_from_paths`` one at a time, for paths arriving on a pipe: the same items and ids,
    each yielded as soon as its line is read. Memory grows only by the set of ids seen (to
    make a repeated path's id unique), about 100 bytes per distinct path."""
    counts: dict[str, int] = {}
    for path, source in paths:
        candidate, n = path, counts.get(path, 1)
        while candidate in counts:
            n += 1
            candidate = f"{path}-{n}"
        counts[candidate] = 1
        if candidate != path:
            counts[path] = n  # the next repeat of this path starts its search at -(n+1)
        yield ManifestItem(path=path, root=root, kind=guess_kind(path), source=source, id=candidate)


def write_manifest(items: Iterable[ManifestItem], path: str | os.PathLike[str] | None) -> int:
    """Write items as JSONL (gzip when the name ends in ``.gz``; stdout when path is None or ``-``).

    Relative paths are rewritten relative to the new manifest's folder, so the files still resolve.
    Writes go to a temporary file that replaces the target, so a failure never leaves half a manifest.
    """
    if path is None or os.fspath(path) == "-":
        count = 0
        for item in items:
            sys.stdout.write(json.dumps(item.to_record(os.getcwd()), ensure_ascii=False) + "\n")
            count += 1
        return count
    from .fileio import atomic_write

    path = os.fspath(path)
    out_dir = os.path.dirname(os.path.abspath(path))
    count = 0
    with atomic_write(path) as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if path.endswith(".gz") else raw
        handle = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
        for item in items:
            handle.write(json.dumps(item.to_record(out_dir), ensure_ascii=False) + "\n")
            count += 1
        handle.flush()
        handle.detach()  # atomic_write closes the file itself
        if stream is not raw:
            stream.close()  # writes the gzip trailer into raw
    return count


# ---------------------------------------------------------------- validation and statistics


@dataclass(frozen=True)
class ValidationReport:
    items: int  # lines that parsed
    errors: tuple[str, ...]  # "manifest:line: field: reason", in file order

    @property
    def ok(self) -> bool:
        return not self.errors


def _check_file_opens(item: ManifestItem) -> str | None:
    """Why the item's file cannot be used, or None: it is loaded exactly as decode and train load
    it (one code path), with the default size limits."""
    from .errors import ItemError
    from .features import default_extractor

    if item.kind is None:
        return f"{item.source}: kind: cannot tell image from audio for {item.path!r}; add \"kind\""
    try:
        default_extractor(item.kind).load(item)
    except ItemError as exc:
        return str(exc)
    return None


def validate_manifest(path: str, *, check_files: bool = True, need_text: bool = False) -> ValidationReport:
    """Check every line (not just the first bad one) and, optionally, that every file opens."""
    errors: list[str] = []
    items: list[ManifestItem] = []
    root = os.path.dirname(os.path.abspath(path))
    try:
        for number, raw in enumerate(_raw_lines(path), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(_decoded(raw, path, number))
            except ManifestError as exc:
                errors.append(str(exc))
                continue
            except json.JSONDecodeError as exc:
                errors.append(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            try:
                item = parse_record(record, source=path, line=number, root=root)
            except ManifestError as exc:
                errors.append(str(exc))
                continue
            if need_text and item.text is None:
                errors.append(f"{item.source}: text: missing (needed for training and evaluation)")
            items.append(item)
    except FileNotFoundError:
        return ValidationReport(0, (f"{path}: no such file",))
    except (OSError, EOFError) as exc:
        return ValidationReport(len(items), (*errors, f"{path}: cannot read: {exc}"))
    seen: dict[str, str] = {}
    for item in items:
        if item.id and item.id in seen:
            errors.append(f"{item.source}: id: {item.id!r} already used at {seen[item.id]}")
        seen.setdefault(item.id, item.source)
    if check_files:
        for item in items:
            problem = _check_file_opens(item)
            if problem:
                errors.append(problem)
    errors.sort(key=lambda e: _line_of(e))
    return ValidationReport(len(items), tuple(errors))


def _line_of(message: str) -> int:
    parts = message.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


@dataclass(frozen=True)
class ManifestStats:
    items: int
    with_text: int
    kinds: dict[str, int]
    characters: dict[str, int]  # character -> count over all transcripts
    length_histogram: list[tuple[int, int, int]]  # (from, to inclusive, count) of transcript lengths
    min_length: int
    max_length: int
    mean_length: float
    total_duration: float | None  # seconds, when every item carries a duration


def manifest_stats(items: list[ManifestItem], *, bins: int = 10) -> ManifestStats:
    lengths = [len(item.text) for item in items if item.text is not None]
    chars: Counter[str] = Counter()
    for item in items:
        if item.text is not None:
            chars.update(item.text)
    histogram: list[tuple[int, int, int]] = []
    if lengths:
        low, high = min(lengths), max(lengths)
        width = max(1, math.ceil((high - low + 1) / bins))
        counts = Counter((n - low) // width for n in lengths)
        for b in range((high - low) // width + 1):
            histogram.append((low + b * width, low + (b + 1) * width - 1, counts.get(b, 0)))
    durations = [item.duration for item in items]
    return ManifestStats(
        items=len(items),
        with_text=len(lengths),
        kinds=dict(Counter(item.kind or "unknown" for item in items)),
        characters=dict(chars.most_common()),
        length_histogram=histogram,
        min_length=min(lengths, default=0),
        max_length=max(lengths, default=0),
        mean_length=(sum(lengths) / len(lengths)) if lengths else 0.0,
        total_duration=sum(durations) if items and all(d is not None for d in durations) else None,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- importers


@dataclass(frozen=True)
class ImportResult:
    items: list[ManifestItem]
    skipped: tuple[str, ...]  # human-readable reasons, one per skipped file


def import_gt_txt(folder: str, *, recursive: bool = True) -> ImportResult:
    """Images with a ``<stem>.gt.txt`` sidecar (kraken, calamari, tesstrain, ocropus).

    ``line.png`` pairs with ``line.gt.txt``; ocropus's ``line.bin.png`` / ``line.nrm.png`` too.
    Images without a sidecar are skipped and listed in ``skipped``, never silently.
    """
    if not os.path.isdir(folder):
        raise ManifestError(folder, None, None, "not a folder")
    pattern = "**/*" if recursive else "*"
    images = sorted(p for p in Path(folder).glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    items, skipped = [], []
    for image in images:
        stem = image.name[: -len(image.suffix)]
        for suffix in (".bin", ".nrm"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        sidecar = image.with_name(stem + ".gt.txt")
        if not sidecar.exists():
            skipped.append(f"{image}: no {sidecar.name} beside it")
            continue
        lines = read_utf8_lines(str(sidecar), "a transcript file")
        if len([line for line in lines if line.strip()]) > 1:
            raise ManifestError(str(sidecar), 2, "text", "holds more than one line; a line image needs one transcript")
        text = lines[0] if lines else ""
        items.append(ManifestItem(path=str(image.resolve()), text=text, kind="image", source=str(sidecar)))
    return ImportResult(_assign_ids(items), tuple(skipped))


def import_tsv(path: str) -> ImportResult:
    """``path<TAB>label`` lines (PaddleOCR's recognition lists); paths resolve against the list's folder."""
    root = os.path.dirname(os.path.abspath(path))
    items = []
    for number, line in enumerate(read_utf8_lines(path, "a path<TAB>label list"), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ManifestError(path, number, "text", "expected 'path<TAB>label', found no tab")
        file_part, text = line.split("\t", 1)
        if not file_part.strip():
            raise ManifestError(path, number, "path", "empty")
        items.append(ManifestItem(path=file_part, root=root, text=text, kind=guess_kind(file_part),
                                  source=f"{path}:{number}"))
    return ImportResult(_assign_ids(items), ())
