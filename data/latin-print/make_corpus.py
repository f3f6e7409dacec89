"""The text the bundled latin-print model is trained and tested on (committed; rebuilt by this).

    python data/latin-print/make_corpus.py        # or: make data-latin-print-corpus

Three sources, each split so that no test text is ever trained on:
- English prose from the docstrings of CPython 3.11's standard library (PSF licence, see
  LICENSE.md), split by module: a module's docstrings are all train or all test;
- the bundled public-domain passages (data/ocr/source), split by paragraph;
- generated lines that carry no rights: words of French, German, Spanish, Portuguese and
  Italian with their accents, prices, dates, measures and references using the typographic
  quotes, dashes and the Latin-1 signs, so that every character of the alphabet occurs
  often enough to be learned (prose alone almost never shows ¤, ¦ or þ).
Writes train.txt and test.txt here, one line of text per line.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import sys
import sysconfig
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SEED = 20261202
ALPHABET = (
    "".join(chr(c) for c in range(0x20, 0x7F))
    + "".join(chr(c) for c in range(0xA1, 0x100) if c != 0xAD)  # Latin-1 signs and letters; no soft hyphen
    + "‘’‚“”„–—…€•"
)
# Prose lines of these lengths (characters): what a printed line holds.
MIN_CHARS, MAX_CHARS = 12, 72
STDLIB_LINES = 14000
SKIP_PARTS = {"test", "tests", "idlelib", "lib2to3", "turtledemo", "ensurepip", "pydoc_data", "site-packages",
              "encodings", "unittest"}

WORDS = {  # common words whose spelling needs the Latin-1 letters (no rights: a dictionary's headwords)
    "fr": "été élève à où déjà très français garçon façade leçon Noël maïs naïve cœur fête forêt hôtel "
          "château île août rôle théâtre début réservé écrit être même après première deuxième voilà "
          "âge pâte côte hôpital Citroën L'Haÿ-les-Roses Saint-Saëns crème chère Ève Èze "
          "ça reçu préféré général société économie qualité sûr goût dîner bientôt élégant Hélène",
    "de": "über Straße groß schön Mädchen Größe Grüße müssen können Bäume Brücke Fähre weiß Fuß "
          "Äpfel Öl Übung Bücher Tür Käse Glück Häuser fünf zwölf dürfen Gebäude Mönch Köln München "
          "Zürich Österreich Ärzte Schlüssel Frühstück gemütlich",
    "es": "año niño señor mañana España corazón canción información está también después aquí "
          "árbol jamás lápiz música próximo rápido teléfono último país día ¿qué? ¡hola! ¿cómo? "
          "¡vámonos! pequeño compañía montaña",
    "pt": "não são mãe coração ação informação lição avô avó você três português órgão irmã pão "
          "cidade atenção põe mães irmãos Conceição Açores Ônibus Ùltima",
    "it": "città perché più può così caffè università libertà virtù già giù lunedì però Ìsola Òmnia",
    "nordic": "Ærø Øresund Åland færdig ø søster år blåbær Þórr Eyjafjallajökull fjörður Ísland "
              "Sønderborg Ålesund ýmis þú það verð Ýr Þingvellir ÐÞ faðir",
}
NAMES = "Müller Dvořák Zoë Ñúñez Brontë Renée José Björk Rénald François Åsa Søren Ångström Gödel Thérèse " \
        "Curaçao Kraków Bogotá Málaga Düsseldorf São_Paulo Besançon Göteborg Montréal Québec Reykjavík"
ENGLISH = ("the of and to in is that for it as with was on be by at this from or an which one all were "
           "not but are have had his their they will would there can more other about into these time "
           "first price total page item order number section report note date list account").split()
MONTHS = "January February March April May June July August September October November December".split()
SIGNS = "¡¢£¤¥¦§¨©ª«¬®¯°±²³´µ¶·¸¹º»¼½¾¿×÷"


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def printable(text: str) -> bool:
    return all(char in ALPHABET for char in text)


def flow(words: list[str], rng: random.Random) -> list[str]:
    """Words re-flowed into lines of MIN_CHARS..MAX_CHARS characters, each length drawn."""
    lines, current, target = [], "", rng.randint(MIN_CHARS + 10, MAX_CHARS)
    for word in words:
        if current and len(current) + 1 + len(word) > target:
            lines.append(current)
            current, target = "", rng.randint(MIN_CHARS + 10, MAX_CHARS)
        current = f"{current} {word}" if current else word
    if len(current) >= MIN_CHARS:
        lines.append(current)
    return [line for line in lines if MIN_CHARS <= len(line) <= MAX_CHARS]


def stdlib_docstrings() -> dict[str, list[str]]:
    """Module name -> its docstrings' paragraphs of prose (no doctest, no code-like lines)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    modules: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if SKIP_PARTS & set(relative.parts) or relative.name.startswith("test_"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        paragraphs = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if not doc:
                    continue
                for block in re.split(r"\n\s*\n", doc):
                    if ">>>" in block or "::" in block or re.search(r"^\s{4,}", block, re.M):
                        continue  # examples and indented code, not prose
                    text = clean(block)
                    words = text.split()
                    if len(words) >= 6 and printable(text):
                        paragraphs.append(text)
        if paragraphs:
            modules[".".join(relative.with_suffix("").parts)] = paragraphs
    return modules


def in_test(key: str, share: float) -> bool:
    """Stable split by name: the same module or paragraph lands on the same side on every run."""
    digest = hashlib.sha256(f"latin-print:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def literature() -> list[str]:
    source = (REPO / "data" / "ocr" / "source" / "public-domain-text.txt").read_text(encoding="utf-8")
    return [clean(line) for line in source.splitlines() if line.strip() and not line.startswith("#")]


def number(rng: random.Random) -> str:
    return rng.choice([str(rng.randint(0, 99)), str(rng.randint(100, 9999)), f"{rng.randint(1, 999):,}",
                       f"{rng.uniform(0, 999):.2f}", f"{rng.randint(1, 99)},{rng.randint(0, 99):02d}"])


def generated_line(rng: random.Random) -> str:
    """One line mixing accented words, names, signs and formatted numbers."""
    lang = rng.choice(list(WORDS))
    foreign = WORDS[lang].split()
    names = [name.replace("_", " ") for name in NAMES.split()]
    pieces: list[str] = []
    while sum(len(piece) + 1 for piece in pieces) < rng.randint(20, 60):
        kind = rng.random()
        if kind < 0.35:
            word = rng.choice(foreign)
            pieces.append(word.upper() if rng.random() < 0.15 else word)
        elif kind < 0.5:
            pieces.append(rng.choice(ENGLISH))
        elif kind < 0.58:
            pieces.append(rng.choice(names))
        elif kind < 0.66:
            pieces.append(rng.choice(["€", "£", "$", "¥", "¢", "¤"]) + number(rng))
        elif kind < 0.72:
            pieces.append(f"{rng.randint(-30, 45)} °{rng.choice('CF')}")
        elif kind < 0.77:
            pieces.append(f"§ {rng.randint(1, 200)}" + rng.choice(["", f" ¶ {rng.randint(1, 9)}", "(b)"]))
        elif kind < 0.82:
            pieces.append(f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1700, 2030)}")
        elif kind < 0.87:
            pieces.append(rng.choice(["«", "“", "‘", "„", "‚", '"', "'"]) + rng.choice(foreign + ENGLISH)
                          + rng.choice(["»", "”", "’", "“", "‘", '"', "'"]))
        elif kind < 0.92:
            pieces.append(rng.choice(SIGNS) + rng.choice([str(rng.randint(1, 99)), rng.choice(ENGLISH), ""]))
        elif kind < 0.96:
            pieces.append(rng.choice(["–", "—", "…", "•", "×", "÷", "±", "½", "¼", "¾", "µm", "m²", "km³",
                                      "N°", "1ª", "2º", "©", "®", "·",
                                      f"{rng.randint(2, 9)}^{rng.randint(2, 12)}"]))
        elif kind < 0.98:
            word = rng.choice(ENGLISH)
            pieces.append(rng.choice([f"{word}@example.org", f"~/{word}/", f"#{rng.randint(1, 999)}",
                                      f"{rng.randint(1, 100)}%", f"{{{word}}}", "&", f"[{word}]", f"<{word}>",
                                      f"a_{word}|b", f"C:\\{word}"]))
        else:
            pieces.append(rng.choice(["etc.", "e.g.", "i.e.", "Nr.", "Sr.", "Mme", "Dr.", "p.", "pp."]))
    line = " ".join(piece for piece in pieces if piece)
    if rng.random() < 0.4:
        line = line[0].upper() + line[1:] + rng.choice([".", ",", ";", ":", "!", "?", "…", ""])
    return clean(line)[:MAX_CHARS]


def main() -> None:
    rng = random.Random(SEED)
    train: list[str] = []
    test: list[str] = []
    modules = stdlib_docstrings()
    stdlib_train, stdlib_test = [], []
    for name in sorted(modules):
        lines = flow(" ".join(modules[name]).split(), rng)
        (stdlib_test if in_test(name, 0.15) else stdlib_train).extend(lines)
    rng.shuffle(stdlib_train)
    rng.shuffle(stdlib_test)
    train += stdlib_train[:STDLIB_LINES]
    test += stdlib_test[:1500]
    for index, paragraph in enumerate(literature()):
        lines = flow(paragraph.split(), rng)
        (test if in_test(f"literature:{index}", 0.25) else train).extend(lines)
    generated = [generated_line(rng) for _ in range(6000)]
    train += generated[:5000]
    test += generated[5000:]  # same generator, its own lines: the font and the rest of the text are new
    rng.shuffle(train)
    seen = set(train)
    test = [line for line in test if line not in seen and printable(line)]
    train = [line for line in train if printable(line)]
    for name, lines in (("train", train), ("test", test)):
        (HERE / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    missing = sorted(set(ALPHABET) - set("".join(train)))
    print(f"train {len(train)} lines, test {len(test)} lines (Python {sys.version.split()[0]}); "
          f"alphabet characters never in train: {''.join(missing) or 'none'}", file=sys.stderr)


if __name__ == "__main__":
    main()
