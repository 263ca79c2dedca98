"""Resume codes (psicoia.chat.resume): copyable by hand, forgiving to read, hashed."""

from __future__ import annotations

import hashlib
import re

import pytest

from psicoia.chat.resume import ALPHABET, LENGTH, hash_code, new_code, normalize_code


def test_a_code_is_ten_unambiguous_characters_in_two_groups():
    for _ in range(200):
        code = new_code()
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", code), code
    assert not set("ILOU") & set(ALPHABET) and len(ALPHABET) == 32


def test_a_code_carries_fifty_random_bits():
    assert LENGTH * 5 == 50 >= 40
    assert new_code(lambda bits: 0) == "00000-00000"
    assert new_code(lambda bits: (1 << bits) - 1) == "ZZZZZ-ZZZZZ"
    assert len({new_code() for _ in range(1000)}) == 1000


@pytest.mark.parametrize("typed", ["7kq2m-xh4bt", " 7KQ2M XH4BT ", "7KQ2MXH4BT", "7-k-q-2-m-x-h-4-b-t"])
def test_reading_ignores_case_spaces_and_dashes(typed):
    assert normalize_code(typed) == "7KQ2M-XH4BT"


def test_look_alike_letters_read_as_digits():
    assert normalize_code("O1ILo-00000") == "01110-00000"


@pytest.mark.parametrize("typed", ["", "7KQ2M", "7KQ2M-XH4BT9", "7KQ2M-XH4B!", "UUUUU-UUUUU"])
def test_what_cannot_be_a_code_is_none(typed):
    assert normalize_code(typed) is None


def test_only_a_hash_of_the_canonical_code_is_stored():
    code = new_code()
    assert hash_code(code) == hashlib.sha256(code.encode()).digest()
    assert hash_code(normalize_code(code.lower())) == hash_code(code)
    with pytest.raises(ValueError):
        hash_code(code.lower())
