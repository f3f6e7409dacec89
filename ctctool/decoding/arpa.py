"""Read an ARPA n-gram file into flat arrays, fast enough for files of hundreds of megabytes.

An ARPA file is a ``\\data\\`` header (``ngram N=COUNT`` per order), then one section per order,
``\\N-grams:``, of lines ``log10-prob  w1 .. wN  [log10-backoff]``, then ``\\end\\``. The reader
finds the few section headers with a byte search and hands each section's bytes to a
scanner: the compiled one (``_arpa.pyx``, one pass in C with a hash table of the words) or its
readable reference here (``scan_section_py``, used where the extension is not built); both fill
the same arrays and stop at the same first error. What is left (finite numbers, n-grams listed
twice) is checked on the arrays. Every problem is an ``InputFileError`` naming the file and the
line. Fields are split on ASCII whitespace, as KenLM does; words are UTF-8.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputFileError

try:
    from . import _arpa as _compiled
except ImportError:  # built without the extension (CTCTOOL_NO_EXT=1): the reference scanner
    if os.environ.get("CTCTOOL_REQUIRE_EXT") == "1":
        raise ImportError("CTCTOOL_REQUIRE_EXT=1 but the compiled ARPA scanner (ctctool.decoding._arpa) is "
                          "not built; reinstall with a C compiler and Cython") from None
    _compiled = None

MAX_ORDER = 10  # _arpa.pyx's MAX_ORDER
MAX_NGRAMS = 200_000_000  # an ARPA header asking for more is refused before any n-gram is read
MAX_NUMBER_BYTES = 63  # _arpa.pyx's MAX_NUMBER
TOO_MANY, WRONG_FIELDS, NOT_A_NUMBER = 1, 2, 3  # the scanners' error codes
_NUMBER_BYTES = frozenset(b"0123456789+-.eEinfatyINFATY")  # _arpa.pyx's number_byte
HASH_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)


@dataclass
class ArpaArrays:
    """An ARPA file's n-grams. ``tokens[:num_unigrams]`` are the unigram section's words in file
    order; a word that only longer n-grams use follows them (such n-grams cannot be scored)."""

    tokens: list[str]
    num_unigrams: int
    ngrams: list[np.ndarray]  # per order n: int64 [count, n], indices into tokens
    log10_prob: list[np.ndarray]  # per order: float64 [count]
    log10_backoff: list[np.ndarray]  # per order: float64 [count], 0 where the line has none

    @property
    def order(self) -> int:
        return len(self.ngrams)


def read_arpa(path: str, *, compiled: bool | None = None) -> ArpaArrays:
    """The n-grams of the ARPA file at ``path`` (``.arpa`` or ``.arpa.gz``). ``compiled``
    chooses the scanner (default: the compiled one when it is built)."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except (OSError, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputFileError(f"{path}: cannot read the LM ({reason})") from None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise InputFileError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None
    use_compiled = _compiled is not None if compiled is None else compiled
    if use_compiled and _compiled is None:
        raise ImportError("the compiled ARPA scanner (ctctool.decoding._arpa) is not built")
    return _parse(path, data, _compiled if use_compiled else None)


def _text(line: bytes, limit: int = 60) -> str:
    return repr(line[:limit].decode("utf-8", errors="replace"))


def _parse(path: str, data: bytes, compiled) -> ArpaArrays:
    declared, position, line = _read_header(path, data)
    # The section headers: the few lines that start with a backslash, found by searching the
    # bytes rather than by a Python loop over every line.
    sections: list[tuple[int, int, int, int]] = []  # (order, first byte, end byte, first line)
    current, opened = 0, None
    ended = False
    counted_to = position
    for start in _line_starts_with_backslash(data, position):
        line += data.count(b"\n", counted_to, start)
        counted_to = start
        newline = data.find(b"\n", start)
        after = len(data) if newline < 0 else newline + 1
        text = data[start:after].strip()
        is_end, is_header = text == b"\\end\\", text.endswith(b"-grams:")
        if not (is_end or is_header):
            continue  # read as an n-gram line, and refused there (or before the first section)
        if opened is None:
            _only_blank(path, data, position, start)
        else:
            sections.append((current, opened[0], start, opened[1]))
        if is_end:
            ended = True
            break
        try:
            n = int(text[1:-7])
        except ValueError:
            raise InputFileError(f"{path}:{line}: bad section header {_text(text, 40)}") from None
        if n != current + 1 or n not in declared:
            raise InputFileError(f"{path}:{line}: section \\{n}-grams: out of order or not declared in \\data\\")
        current, opened = n, (after, line + 1)
    if not ended:
        raise InputFileError(f"{path}: no \\end\\ line: the file is cut short or not ARPA")
    if not declared or len(sections) != len(declared):
        raise InputFileError(f"{path}: \\data\\ declares {len(declared)} orders but {len(sections)} sections follow")
    vocabulary = compiled.Vocabulary(data, data) if compiled is not None else _Vocabulary()
    ngrams, probs, backoffs = [], [], []
    num_unigrams = 0
    for n, begin, end, first_line in sections:
        rows, prob, backoff = _read_section(path, data, n, begin, end, first_line, declared[n], vocabulary,
                                            compiled)
        ngrams.append(rows)
        probs.append(prob)
        backoffs.append(backoff)
        if n == 1:
            num_unigrams = len(vocabulary)
    tokens = [word.decode("utf-8") for word in vocabulary.words(0)]
    return ArpaArrays(tokens, num_unigrams, ngrams, probs, backoffs)


def _read_header(path: str, data: bytes) -> tuple[dict[int, int], int, int]:
    """(declared count per order, byte offset and 1-based number of the first line after the
    counts: the first section header, if the file is well formed)."""
    declared: dict[int, int] = {}
    in_data = False
    position, line = 0, 1
    while position < len(data):
        newline = data.find(b"\n", position)
        end = len(data) if newline < 0 else newline
        text = data[position:end].strip()
        if text:
            where = f"{path}:{line}"
            if not in_data:
                in_data = text == b"\\data\\"
            elif text.startswith(b"ngram "):
                key, _, value = text[6:].partition(b"=")
                try:
                    n, count = int(key), int(value)
                except ValueError:
                    raise InputFileError(f"{where}: expected 'ngram N=COUNT', got {_text(text)}") from None
                if not 1 <= n <= MAX_ORDER or count < 0 or n in declared:
                    raise InputFileError(f"{where}: ngram order must be 1..{MAX_ORDER}, once each, with a count >= 0")
                declared[n] = count
                if sum(declared.values()) > MAX_NGRAMS:
                    raise InputFileError(f"{where}: the header declares more than {MAX_NGRAMS:,} n-grams")
            elif text.startswith(b"\\"):
                return declared, position, line
            else:
                raise InputFileError(f"{where}: unexpected line {_text(text)} (expected \\data\\ counts or a "
                                     "section)")
        position, line = end + 1, line + 1
    return declared, len(data), line


def _line_starts_with_backslash(data: bytes, position: int):
    """The start of each line from ``position`` on whose first non-blank byte is a backslash
    (the section headers, and the odd n-gram with a backslash in a word): memchr-speed search
    for backslashes, then a look back to the line's start."""
    while True:
        found = data.find(b"\\", position)
        if found < 0:
            return
        start = data.rfind(b"\n", 0, found) + 1
        if not data[start:found].strip():
            yield start
        position = found + 1


def _only_blank(path: str, data: bytes, begin: int, end: int) -> None:
    """Nothing but blank lines between the counts and the first section."""
    if not data[begin:end].strip():
        return
    line = data.count(b"\n", 0, begin) + 1
    for offset, text in enumerate(data[begin:end].split(b"\n")):
        if text.strip():
            raise InputFileError(f"{path}:{line + offset}: unexpected line {_text(text.strip())} "
                                 "(expected \\data\\ counts or a section)")


# ---------------------------------------------------------------- the reference scanner


class _Vocabulary:
    """The reference twin of ``_arpa.Vocabulary``: words in order of first sight."""

    def __init__(self) -> None:
        self.index: dict[bytes, int] = {}

    def intern(self, word: bytes) -> int:
        return self.index.setdefault(word, len(self.index))

    def __len__(self) -> int:
        return len(self.index)

    def words(self, start: int = 0) -> list[bytes]:
        return list(self.index)[start:]


def _number(text: bytes) -> float | None:
    """A probability or backoff field as the compiled scanner reads it, or None: decimal
    notation, inf or nan (no hexadecimal, no underscores: where strtod and float() differ)."""
    if len(text) > MAX_NUMBER_BYTES or not set(text) <= _NUMBER_BYTES:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def scan_section_py(data: bytes, begin: int, end: int, n: int, first_line: int, limit: int,
                    vocabulary: _Vocabulary, ids: np.ndarray, probs: np.ndarray, backoffs: np.ndarray,
                    line_numbers: np.ndarray) -> tuple[int, int, int]:
    """Read the n-gram lines in ``data[begin:end]`` (line ``first_line`` is the first, 1-based)
    into the arrays; more than ``limit`` rows is an error. Returns (rows read, error code or 0,
    line of the error). Per line: the number of fields, the row limit, then the numbers."""
    rows = 0
    line = first_line
    for raw in data[begin:end].split(b"\n"):
        fields = raw.split()  # ASCII whitespace, as the compiled scanner's is_space (and \n)
        if fields:
            if not n + 1 <= len(fields) <= n + 2:
                return rows, WRONG_FIELDS, line
            if rows == limit:
                return rows, TOO_MANY, line
            prob = _number(fields[0])
            backoff = _number(fields[n + 1]) if len(fields) == n + 2 else 0.0
            if prob is None or backoff is None:
                return rows, NOT_A_NUMBER, line
            probs[rows], backoffs[rows] = prob, backoff
            for k in range(n):
                ids[rows, k] = vocabulary.intern(fields[k + 1])
            line_numbers[rows] = line
            rows += 1
        line += 1
    return rows, 0, line


def _read_section(path: str, data: bytes, n: int, begin: int, end: int, first_line: int, declared: int,
                  vocabulary, compiled) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    capacity = min(declared, data.count(b"\n", begin, end) + 1)  # the header's count is not trusted
    ids = np.zeros((capacity, n), dtype=np.int64)
    probs = np.zeros(capacity, dtype=np.float64)
    backoffs = np.zeros(capacity, dtype=np.float64)
    line_numbers = np.zeros(capacity, dtype=np.int64)
    scan = compiled.scan_section if compiled is not None else scan_section_py
    rows, error, line = scan(data, begin, end, n, first_line, declared, vocabulary, ids, probs, backoffs,
                             line_numbers)
    if error == WRONG_FIELDS:
        raise InputFileError(f"{path}:{line}: expected log10-prob, {n} word(s) and an optional backoff")
    if error == TOO_MANY:
        raise InputFileError(f"{path}:{line}: more {n}-grams than the header's {declared}")
    if error == NOT_A_NUMBER:
        raise InputFileError(f"{path}:{line}: probability or backoff is not a number")
    if rows < declared:
        raise InputFileError(f"{path}: \\data\\ says {declared} {n}-grams, the section holds {rows}")
    bad = np.flatnonzero(~np.isfinite(probs) | (probs > 0) | ~np.isfinite(backoffs))
    if bad.size:
        raise InputFileError(f"{path}:{line_numbers[bad[0]]}: log10 probability must be finite and <= 0, "
                             "backoff finite")
    duplicate = first_duplicate(ids)
    if duplicate is not None:
        words = vocabulary.words(0)
        text = " ".join(words[i].decode("utf-8") for i in ids[duplicate])
        raise InputFileError(f"{path}:{line_numbers[duplicate]}: n-gram {text!r} listed twice")
    return ids, probs, backoffs


# ---------------------------------------------------------------- rows of word ids


def row_keys(rows: np.ndarray, multiplier: int) -> np.ndarray:
    """A 64-bit polynomial hash of each row (wrapping uint64 arithmetic): equal rows, equal keys;
    callers confirm a key match by comparing the rows themselves."""
    keys = np.zeros(len(rows), dtype=np.uint64)
    factor = np.uint64(multiplier)
    with np.errstate(over="ignore"):
        for column in range(rows.shape[1]):
            keys = keys * factor + rows[:, column].astype(np.uint64) + np.uint64(1)
    return keys


def first_duplicate(rows: np.ndarray) -> int | None:
    """The index of the first row that repeats an earlier one, or None. Rows whose hashes
    collide (rare) are compared exactly."""
    if len(rows) < 2:
        return None
    keys = row_keys(rows, HASH_MULTIPLIERS[0])
    sorted_keys = np.sort(keys)
    repeated = np.unique(sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]])
    if not repeated.size:
        return None
    seen: set[tuple[int, ...]] = set()
    for index in np.flatnonzero(np.isin(keys, repeated)).tolist():
        row = tuple(rows[index].tolist())
        if row in seen:
            return index
        seen.add(row)
    return None
