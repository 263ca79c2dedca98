"""Resume codes (psicoia.chat.resume): copyable by hand, forgiving to read, stored hashed."""

from __future__ import annotations

import hashlib
import re

import pytest

from psicoia.chat.resume import ALPHABET, LENGTH, hash_code, new_code, normalize


def test_a_code_is_ten_unambiguous_characters_in_two_groups():
    for _ in range(200):
        code = new_code()
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", code), code
    assert not set("ILOU") & set(ALPHABET) and len(ALPHABET) == 32


def test_a_code_carries_fifty_random_bits():
    assert LENGTH * 5 == 50 >= 40
    assert len({new_code() for _ in range(2000)}) == 2000


@pytest.mark.parametrize("typed", ["7kq2m-xh4bt", " 7KQ2M XH4BT ", "7KQ2MXH4BT",
                                   "7-k-q-2-m-x-h-4-b-t"])
def test_reading_ignores_case_spaces_and_dashes(typed):
    assert normalize(typed) == "7KQ2MXH4BT"
    assert hash_code(typed) == hash_code("7KQ2M-XH4BT")


def test_look_alike_letters_read_as_digits():
    assert normalize("O1ILo-00000") == "0111000000"


@pytest.mark.parametrize("typed", ["", "7KQ2M", "7KQ2M-XH4BT9", "7KQ2M-XH4B!", "UUUUU-UUUUU"])
def test_what_cannot_be_a_code_is_none_and_has_no_hash(typed):
    assert normalize(typed) is None
    with pytest.raises(ValueError):
        hash_code(typed)


def test_only_a_sha256_of_the_normalised_code_is_stored():
    code = new_code()
    assert hash_code(code) == hashlib.sha256(code.replace("-", "").encode()).digest()
