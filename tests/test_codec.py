from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctctool.codec import BLANK, Codec
from ctctool.errors import CodecError


def test_blank_is_zero_labels_sorted_space_is_a_label():
    codec = Codec.from_texts(["ba c", "ab"])
    assert codec.labels == (" ", "a", "b", "c") and codec.size == 5
    assert codec.encode("a b") == [2, 1, 3]
    assert BLANK not in codec.encode("abc ")


def test_nfc_normalization_merges_combining_forms():
    decomposed = unicodedata.normalize("NFD", "café")
    codec = Codec.from_texts([decomposed])
    assert "é" in codec.labels and "\u0301" not in codec.labels
    assert codec.decode(codec.encode("café")) == "café"
    raw = Codec.from_texts([decomposed], normalization="none")
    assert "\u0301" in raw.labels


def test_unknown_characters_error_and_lenient():
    codec = Codec.from_texts(["abc"])
    with pytest.raises(CodecError, match=r"'x' \(U\+0078 LATIN SMALL LETTER X\)"):
        codec.encode("abx")
    assert codec.encode("axbyc", lenient=True) == [1, 2, 3]
    assert codec.unknown_characters(["axx", "y"]) == {"x": 2, "y": 1}


def test_round_trip_dict_and_bad_codecs():
    codec = Codec.from_texts(["hello"], normalization="NFKC")
    assert Codec.from_dict(codec.to_dict()) == codec
    with pytest.raises(CodecError):
        Codec(("a", "a"))
    with pytest.raises(CodecError):
        Codec(("a",), normalization="NFX")
    with pytest.raises(CodecError):
        Codec.from_texts(["", "\n"])


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), min_size=1))
def test_encode_decode_round_trip(text):
    codec = Codec.from_texts([text])
    assert codec.decode(codec.encode(text)) == unicodedata.normalize("NFC", text)
    assert all(1 <= i < codec.size for i in codec.encode(text))
