"""Synthetic printed text lines: the library side of ``ctctool synth``.

``synthesize`` draws sample ``i`` from a ``random.Random`` seeded with (seed, i) alone, so the
output is the same for a seed whatever the number of worker processes, and sample ``i`` is
the same whether 10 or 10 million are made. Each sample takes the next text (the corpus in
a seeded order, pass after pass), a face chosen at random among those that draw every
character of it, and a degradation level among those asked for. Text no face can draw is
skipped and reported, never drawn with boxes: the manifest's labels are what the images show.

Output: ``DIR/images/NNNN/NNNNNNNN.png`` (10,000 per folder) and ``DIR/manifest.jsonl``
(``path``, ``text``, ``font``, ``degrade``), written in sample order as work completes into
``manifest.jsonl.partial``, renamed when the run ends, so an interrupted run keeps its lines.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, OptionError, OutputError
from ..threads import check_workers
from .corpus import Corpus
from .degrade import LEVELS
from .fonts import Coverage, FontFace

MANIFEST_NAME = "manifest.jsonl"
CHUNK = 64  # samples per task handed to a worker process
MIN_HEIGHT, MAX_HEIGHT = 8, 256  # px of an output line
MAX_SAMPLES = 100_000_000


@dataclass(frozen=True)
class SynthConfig:
    height: int = 48  # px: output line height (ctctool train scales lines to the model's height)
    degrade: tuple[str, ...] = ("light",)  # levels drawn uniformly per sample
    seed: int = 0
    samples: int | None = None  # None: one per corpus text

    def __post_init__(self) -> None:
        if not MIN_HEIGHT <= self.height <= MAX_HEIGHT:
            raise OptionError(f"--height: {self.height} px is outside {MIN_HEIGHT}-{MAX_HEIGHT}")
        unknown = [name for name in self.degrade if name not in LEVELS]
        if unknown or not self.degrade:
            raise OptionError(f"--degrade: unknown level {', '.join(unknown) or '(none)'}; "
                              f"choose from {', '.join(LEVELS)} (several separated by commas)")
        if self.samples is not None and not 1 <= self.samples <= MAX_SAMPLES:
            raise OptionError(f"--n: {self.samples} is outside 1-{MAX_SAMPLES}")


@dataclass
class SynthReport:
    written: int = 0
    no_face: int = 0  # samples whose text no face draws completely
    unrenderable: int = 0  # samples a face could not draw at a sane size
    missing_examples: list[str] = field(default_factory=list)  # "'ŧ' in 'aŧb'" for the first few
    faces: int = 0
    faces_used: dict[str, int] = field(default_factory=dict)
    manifest: str = ""


def parse_levels(spec: str) -> tuple[str, ...]:
    """``"scan"`` or ``"light,scan,heavy"`` or ``"all"``."""
    if spec.strip() == "all":
        return tuple(LEVELS)
    return tuple(part.strip() for part in spec.split(",") if part.strip())


# ---------------------------------------------------------------- one sample (in a worker)

_STATE: dict = {}


def _init_worker(texts: tuple[str, ...], faces: tuple[FontFace, ...], config: SynthConfig, out_dir: str) -> None:
    _STATE.update(texts=texts, faces=faces, config=config, out_dir=out_dir, coverage={})


def text_for(index: int, count: int, seed: int) -> int:
    """Which corpus text sample ``index`` draws: the texts in a seeded order, pass after pass."""
    passes, position = divmod(index, count)
    order = _pass_order(passes, count, seed)
    return order[position]


_ORDERS: dict[tuple[int, int, int], list[int]] = {}


def _pass_order(passes: int, count: int, seed: int) -> list[int]:
    key = (passes, count, seed)
    if key not in _ORDERS:
        _ORDERS.clear()  # one pass at a time is enough: chunks walk the indices in order
        order = list(range(count))
        random.Random(f"synth-order:{seed}:{passes}").shuffle(order)
        _ORDERS[key] = order
    return _ORDERS[key]


def image_path(index: int) -> str:
    return f"images/{index // 10_000:04d}/{index:08d}.png"


def _render_chunk(indices: range) -> list[dict]:
    from PIL import Image

    from .render import RenderError, render_line

    texts, faces, config = _STATE["texts"], _STATE["faces"], _STATE["config"]
    coverage: dict[FontFace, Coverage] = _STATE["coverage"]
    out_dir = Path(_STATE["out_dir"])
    results = []
    for index in indices:
        rng = random.Random(f"synth:{config.seed}:{index}")
        text = texts[text_for(index, len(texts), config.seed) if config.samples else index]
        level = config.degrade[rng.randrange(len(config.degrade))]
        order = list(range(len(faces)))
        rng.shuffle(order)
        chosen = None
        missing: set[str] = set()
        for position in order:
            face = faces[position]
            if face not in coverage:
                coverage[face] = Coverage(face)
            lacking = coverage[face].missing(text)
            if not lacking:
                chosen = face
                break
            missing = lacking if not missing else missing & lacking
        if chosen is None:
            results.append({"skip": "no_face", "text": text, "missing": "".join(sorted(missing))})
            continue
        try:
            pixels = render_line(text, chosen, config.height, LEVELS[level], rng)
        except RenderError as exc:
            results.append({"skip": "unrenderable", "text": text, "reason": str(exc)})
            continue
        path = image_path(index)
        (out_dir / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, "L").save(out_dir / path, optimize=False, compress_level=6)
        results.append({"path": path, "text": text, "font": chosen.name, "degrade": level})
    return results


# ---------------------------------------------------------------- the run


def _chunks(total: int) -> Iterator[range]:
    for start in range(0, total, CHUNK):
        yield range(start, min(total, start + CHUNK))


def synthesize(corpus: Corpus, faces: list[FontFace], out_dir: str, config: SynthConfig, *, workers: int = 1,
               overwrite: bool = False, progress: Callable[[int], None] | None = None) -> SynthReport:
    """Render the samples into ``out_dir``; returns what was written and what was skipped."""
    check_workers(workers, least=1)
    if not corpus.texts:
        raise ConfigError("the corpus has no text to draw (every line was empty)")
    if not faces:
        raise ConfigError("no usable font face")
    out = Path(out_dir)
    manifest = out / MANIFEST_NAME
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    if manifest.exists() and not overwrite:
        raise OutputError(f"{manifest}: already exists; choose another -o or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    total = config.samples or len(corpus.texts)
    report = SynthReport(faces=len(faces), manifest=str(manifest))
    partial = out / (MANIFEST_NAME + ".partial")
    state = (corpus.texts, tuple(faces), config, str(out))
    with open(partial, "w", encoding="utf-8") as handle:
        if workers <= 1:
            _init_worker(*state)
            results = map(_render_chunk, _chunks(total))
            _collect(results, handle, report, progress)
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=state) as pool:
                _collect(pool.map(_render_chunk, _chunks(total)), handle, report, progress)
    os.replace(partial, manifest)
    return report


def _collect(chunks, handle, report: SynthReport, progress) -> None:
    for results in chunks:
        for row in results:
            skip = row.get("skip")
            if skip == "no_face":
                report.no_face += 1
                if len(report.missing_examples) < 5:
                    report.missing_examples.append(f"{row['missing']!r} in {row['text'][:40]!r}")
            elif skip == "unrenderable":
                report.unrenderable += 1
            else:
                report.written += 1
                report.faces_used[row["font"]] = report.faces_used.get(row["font"], 0) + 1
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        if progress:
            progress(len(results))
