"""Typed errors raised by the library; the CLI turns them into one-line messages and exit codes."""

from __future__ import annotations


class CtcToolError(Exception):
    """Base class: every message is one sentence a user can act on."""


class ManifestError(CtcToolError):
    """A manifest line (or the manifest file itself) is unusable.

    The message reads ``manifest.jsonl:12: text: expected a string, got 3`` so a user can jump to it.
    """

    def __init__(self, source: str, line: int | None, field: str | None, reason: str):
        self.source = source
        self.line = line
        self.field = field
        self.reason = reason
        where = source if line is None else f"{source}:{line}"
        what = f"{field}: {reason}" if field else reason
        super().__init__(f"{where}: {what}")


class CodecError(CtcToolError):
    """Text holds characters the codec cannot encode."""

    def __init__(self, message: str, unknown: dict[str, int] | None = None):
        self.unknown = dict(unknown or {})
        super().__init__(message)


class ItemError(CtcToolError):
    """One input item (an image or clip) cannot be used; other items may still be fine."""

    def __init__(self, where: str, reason: str):
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # rebuilt from both fields in another process (reader workers)
        return (type(self), (self.where, self.reason))


class FeatureError(ItemError):
    """The file behind an item cannot be read or turned into features."""


class AlignmentError(ItemError):
    """A transcript cannot be aligned to the frames an input gives (too short, counting repeats)."""


class CheckpointError(CtcToolError):
    """A model or resume file is missing, corrupt, or from an incompatible version."""


class DecodeInputError(CtcToolError, ValueError):
    """Log-probabilities handed to a decoder have the wrong dtype, rank, size or values."""


class ConfigError(CtcToolError, ValueError):
    """An option value or combination of options is not usable."""


class OptionError(ConfigError):
    """An option's value is unusable (not finite, out of range, unknown format): a usage error, exit 2."""


class OutputError(CtcToolError, OSError):
    """A file ctctool was asked to write cannot be written (a folder, no permission, disk full)."""


class InputFileError(CtcToolError):
    """A text input (lexicon, corpus, alphabet, LM) is missing, a folder, not UTF-8, or malformed."""


class TrainingError(CtcToolError):
    """Training cannot go on (non-finite loss, nothing usable); resume state was saved where possible."""
