"""Salesforce record ids: generation, the case-safe 18-character form, and input normalisation.

Real ids are 15 case-sensitive base-62 characters (a 3-character key prefix naming the object,
then instance and counter digits) plus a 3-character suffix that encodes which of the first 15
characters are upper case. The suffix makes the 18-character form usable where case is lost
(spreadsheets, case-insensitive joins), so code that compares ids must normalise 15 to 18
characters first. The emulator generates ids the same way and accepts both forms on input, so a
sync that forgets to normalise fails here as it would against a real org.
"""

from __future__ import annotations

import re

#: The 32 symbols of the checksum alphabet, indexed by the 5-bit "upper case" mask of a chunk.
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
#: Base-62 in ASCII order, so that generated ids sort as strings in creation order.
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")
#: Characters 4-6 of every generated id: a fixed "instance" so generated ids look real.
_INSTANCE = "8W0"


class MalformedIdError(ValueError):
    """Raised for a value that cannot be a Salesforce id (wrong length or characters)."""


#: Maps every character to "1" (upper-case ASCII letter) or "0", for a fast checksum.
_UPPER_BITS = str.maketrans({chr(c): ("1" if 65 <= c <= 90 else "0") for c in range(128)})


def checksum_suffix(id15: str) -> str:
    """The 3-character case-safe suffix of a 15-character id.

    Each 5-character chunk gives a 5-bit number whose bit *i* is set when character *i* is an
    upper-case letter; the number indexes ``A..Z0..5``.
    """
    bits = id15.translate(_UPPER_BITS)
    return (
        _SUFFIX_ALPHABET[int(bits[4::-1], 2)]
        + _SUFFIX_ALPHABET[int(bits[9:4:-1], 2)]
        + _SUFFIX_ALPHABET[int(bits[14:9:-1], 2)]
    )


def to_18(id15: str) -> str:
    """Append the checksum suffix to a 15-character id."""
    return id15 + checksum_suffix(id15)


def normalize_id(value: str) -> str:
    """Return the canonical 18-character form of a 15- or 18-character id.

    An 18-character id is case-insensitive: its suffix restores the case of the first 15
    characters, so ``001...aaa`` typed in lower case still names the same record.

    Raises:
        MalformedIdError: the value is not a syntactically valid id.
    """
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise MalformedIdError(str(value))
    if len(value) == 15:
        return to_18(value)
    if checksum_suffix(value[:15]) == value[15:]:
        return value
    head, suffix = value[:15], value[15:].upper()
    restored = []
    for chunk in range(3):
        index = _SUFFIX_ALPHABET.find(suffix[chunk])
        if index < 0:
            raise MalformedIdError(value)
        for pos in range(5):
            char = head[chunk * 5 + pos]
            upper = bool(index & (1 << pos))
            if char.isdigit():
                if upper:
                    raise MalformedIdError(value)
                restored.append(char)
            else:
                restored.append(char.upper() if upper else char.lower())
    id15 = "".join(restored)
    return to_18(id15)


#: All two-character base-62 strings in order, to encode a counter two digits at a time.
_PAIRS = [a + b for a in _BASE62 for b in _BASE62]


def make_id(prefix: str, counter: int) -> str:
    """The 18-character id number ``counter`` of the object with key prefix ``prefix``."""
    n, d1 = divmod(counter, 3844)
    n, d2 = divmod(n, 3844)
    n, d3 = divmod(n, 3844)
    n, d4 = divmod(n, 3844)
    if n >= 62:
        raise OverflowError("id counter exhausted")
    return to_18(prefix + _INSTANCE + _BASE62[n] + _PAIRS[d4] + _PAIRS[d3] + _PAIRS[d2] + _PAIRS[d1])
