"""Normalization of staged values for matching: emails, web domains, company names, ids, flags.

Matching rules compare values that people typed into two different CRMs. Before two values can
be compared they are reduced to a canonical key here, in one place, so every rule family
(CON-1 email matching, ACC-3 domain linking, ACC-6 account dedup) agrees on what "the same"
means. Everything is pure and offline:

* Domains use ``tldextract`` with its **bundled** Public Suffix List snapshot and no cache
  directory: ``suffix_list_urls=()`` disables every HTTP fetch, ``cache_dir=None`` disables the
  disk cache, so a worker without internet (or a test runner) never blocks on the network and
  two workers never disagree because one refreshed its list.
* Company names lose case, accents, punctuation, whitespace differences, a leading "the" and
  trailing legal-form suffixes (Inc, LLC, Ltd, GmbH, AG, S.A., ...), ACC-6.

The frame helpers at the bottom (:func:`column`, :func:`as_text`, :func:`as_bool`,
:func:`as_timestamp`) exist because staging stores what the APIs returned: SQLite gives back
strings for timestamps and 0/1 or "true" for booleans, PostgreSQL gives typed values. The rules
coerce on read instead of trusting one backend's types.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import tldextract

# --------------------------------------------------------------------------- domains (ACC-3, ACC-6)

#: Registrable domains shared by unrelated organisations (webmail, social networks, site
#: builders). Two Accounts whose Website is a Facebook page are not duplicates, and a HubSpot
#: company with domain gmail.com is not "the same company" as an Account with a Gmail address;
#: so these never act as a matching key (ACC-3, ACC-6). Private PSL suffixes such as github.io or
#: herokuapp.com are already handled by tldextract (``acme.github.io`` stays distinct).
GENERIC_DOMAINS: frozenset[str] = frozenset(
    {
        "aol.com",
        "bing.com",
        "facebook.com",
        "gmail.com",
        "gmx.de",
        "gmx.net",
        "google.com",
        "googlemail.com",
        "hotmail.com",
        "icloud.com",
        "instagram.com",
        "linkedin.com",
        "live.com",
        "mail.com",
        "me.com",
        "msn.com",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "squarespace.com",
        "tiktok.com",
        "twitter.com",
        "web.de",
        "wix.com",
        "wixsite.com",
        "wordpress.com",
        "x.com",
        "yahoo.com",
        "yandex.ru",
        "youtube.com",
        "zoho.com",
    }
)


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    """The one offline extractor: bundled PSL snapshot, no HTTP, no disk cache.

    ``include_psl_private_domains=True`` makes hosting suffixes (github.io, herokuapp.com,
    blogspot.com) count as public suffixes, so two different sites on the same host are two
    registrable domains rather than one.
    """
    return tldextract.TLDExtract(
        suffix_list_urls=(),
        cache_dir=None,
        fallback_to_snapshot=True,
        include_psl_private_domains=True,
    )


def normalize_domain(value: object) -> str | None:
    """ACC-3/ACC-6: the registrable domain of a website, email address or bare host, else None.

    Scheme, user info, ``www.`` and every other subdomain, port, path, query, trailing dot and
    case are stripped: ``HTTPS://WWW.Acme.co.uk:8443/about?x=1`` -> ``acme.co.uk``. An email
    address yields its domain. IP addresses, ``localhost`` and hosts without a known public
    suffix yield None, because they identify no organisation. Internationalized names are
    returned in their IDNA (punycode) form so both spellings compare equal.

    The host is cut out with plain string operations first and the Public Suffix lookup is
    memoized per host, so ``https://www.acme.com/`` and ``acme.com`` (an Account's Website and
    its company's domain) cost one lookup.
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    return _registrable(_host(str(value)))


def _host(text: str) -> str:
    """The host part of a URL, email address or bare host: lower case, no scheme, user info,
    port, path, query, fragment, trailing dot or leading ``www.``."""
    text = text.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    for sep in "/?#":
        if sep in text:
            text = text.split(sep, 1)[0]
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    if text.startswith("["):  # IPv6 literal: identifies no organisation
        return ""
    if ":" in text:
        text = text.split(":", 1)[0]
    text = text.strip(".")
    if text.startswith("www."):
        text = text[4:]
    return text


@functools.lru_cache(maxsize=1 << 18)
def _registrable(host: str) -> str | None:
    if not host or any(ch.isspace() for ch in host):
        return None
    ext = _extractor()(host)
    if not ext.domain or not ext.suffix:
        return None
    domain = f"{ext.domain}.{ext.suffix}".strip(".")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return domain


def domain_key(value: object) -> str | None:
    """ACC-3/ACC-6 matching key: :func:`normalize_domain`, except shared generic domains -> None."""
    domain = normalize_domain(value)
    if domain is None or domain in GENERIC_DOMAINS:
        return None
    return domain


# ------------------------------------------------------------------------- company names (ACC-6)

#: Legal-form suffixes removed from the END of a normalized company name (ACC-6), written as the
#: normalized token sequences they become (``S.A.`` -> ``sa``, ``Pty. Ltd.`` -> ``pty ltd`` is
#: removed token by token). Multi-token forms are listed whole so their parts are not stripped
#: one at a time from unrelated names (``de`` alone is not a legal form).
LEGAL_SUFFIXES: frozenset[tuple[str, ...]] = frozenset(
    tuple(s.split())
    for s in (
        "inc",
        "incorporated",
        "llc",
        "llp",
        "lllp",
        "lp",
        "pllc",
        "ltd",
        "limited",
        "corp",
        "corporation",
        "co",
        "company",
        "and co",
        "and company",
        "plc",
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "kgaa",
        "ohg",
        "ug",
        "ev",
        "se",
        "sa",
        "sas",
        "sasu",
        "sarl",
        "sca",
        "sl",
        "slu",
        "srl",
        "spa",
        "sa de cv",
        "de cv",
        "bv",
        "nv",
        "vof",
        "cv",
        "pty",
        "pte",
        "pvt",
        "ab",
        "aps",
        "as",
        "asa",
        "oy",
        "oyj",
        "kk",
        "sp z oo",
        "ltda",
        "sro",
        "doo",
    )
)
_MAX_SUFFIX_TOKENS = max(len(s) for s in LEGAL_SUFFIXES)
_LEADING_ARTICLES = frozenset({"the"})

_ABBREVIATION_DOT = re.compile(r"(?<![^\W_])(\w)\.")  # the dot after a one-letter word: S.A. -> SA
_APOSTROPHES = re.compile(r"['\u2019\u2018`\u00b4]")
_NON_WORD = re.compile(r"[\W_]+")


def _fold(text: str) -> str:
    """Casefold and strip accents (NFKD, drop combining marks) until nothing changes."""
    if text.isascii():
        return text.lower()
    previous = None
    while text != previous:
        previous = text
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return text


def normalize_company_name(value: object) -> str | None:
    """ACC-6: a company name reduced to its distinctive words, or None when nothing remains.

    Case and accents are folded, ``&`` reads as ``and``, apostrophes vanish (``Joe's`` ->
    ``joes``), dots of abbreviations join their letters (``S.A.`` -> ``sa``), every other
    punctuation mark and run of whitespace becomes one space. Then a leading ``the`` and
    trailing legal-form suffixes (:data:`LEGAL_SUFFIXES`, repeatedly: ``Acme Holdings Pty.
    Ltd.`` -> ``acme holdings``) are removed, but never the last remaining word, so a company
    literally named "Company" keeps a key. The result is idempotent.
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    text = _fold(str(value))
    if "'" in text or "`" in text or not text.isascii():
        text = _APOSTROPHES.sub("", text)
    if "&" in text:
        text = text.replace("&", " and ")
    if "." in text:
        text = _ABBREVIATION_DOT.sub(r"\1", text)
    tokens = _NON_WORD.sub(" ", text).split()
    tokens = _strip_affixes(tokens)
    return " ".join(tokens) or None


_SUFFIX_ENDINGS = frozenset(s[-1] for s in LEGAL_SUFFIXES)


def _strip_affixes(tokens: list[str]) -> list[str]:
    while len(tokens) > 1:
        if tokens[0] in _LEADING_ARTICLES:
            tokens = tokens[1:]
            continue
        if tokens[-1] not in _SUFFIX_ENDINGS:  # the common case: nothing to strip
            break
        for width in range(min(_MAX_SUFFIX_TOKENS, len(tokens) - 1), 0, -1):
            if tuple(tokens[-width:]) in LEGAL_SUFFIXES:
                tokens = tokens[:-width]
                break
        else:
            break
    return tokens


# ------------------------------------------------------------------------------ emails (CON-1)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_emails(values: pd.Series) -> pd.Series:
    """CON-1/OWN-1: emails compared case- and whitespace-insensitively; invalid or blank -> NA.

    Returns a ``str`` Series aligned with ``values``. An address is valid when it has exactly one
    ``@`` with a dotted domain; anything else cannot identify a person and is treated as absent
    (callers quarantine records that need an email and have none).
    """
    text = as_text(values).str.lower()
    valid = text.str.match(_EMAIL).fillna(False).astype(bool)
    return text.where(valid)


# --------------------------------------------------------------------------- Salesforce ids

_ID_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id18(value: object) -> str | None:
    """The 18-character, case-insensitive-safe form of a Salesforce id (15-char ids converted).

    HubSpot properties such as ``salesforceaccountid`` may hold either form depending on who
    wrote them; links compare the 18-character form. Other lengths pass through stripped.
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) != 15 or not text.isalnum():
        return text
    suffix = ""
    for start in range(0, 15, 5):
        bits = sum(1 << i for i, ch in enumerate(text[start : start + 5]) if "A" <= ch <= "Z")
        suffix += _ID_SUFFIX_ALPHABET[bits]
    return text + suffix


# ------------------------------------------------------------------------ vectorized mapping


def map_unique(values: pd.Series, func: Callable[[Any], str | None]) -> pd.Series:
    """Apply a scalar normalizer once per distinct value and broadcast it back (``str`` Series).

    Staged columns repeat values heavily (domains, names), and the normalizers are Python
    functions, so computing each distinct value once is what keeps ACC-6 near-linear.
    """
    if values.empty:
        return pd.Series([], index=values.index, dtype="str")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([func(u) for u in np.asarray(uniques, dtype=object)] + [None], dtype=object)
    result = mapped[codes]  # sentinel -1 picks the trailing None
    return pd.Series(result, index=values.index, dtype="str")


def domain_keys(values: pd.Series) -> pd.Series:
    """Vectorized :func:`domain_key` (ACC-3/ACC-6)."""
    return map_unique(values, domain_key)


def company_name_keys(values: pd.Series) -> pd.Series:
    """Vectorized :func:`normalize_company_name` (ACC-6)."""
    return map_unique(values, normalize_company_name)


def salesforce_ids18(values: pd.Series) -> pd.Series:
    """Vectorized :func:`salesforce_id18`."""
    return map_unique(as_text(values), salesforce_id18)


# ------------------------------------------------------------------------- frame coercion

_TRUE_TEXT = frozenset({"true", "t", "1", "yes", "y", "on"})


def values_of(values: pd.Series) -> list[Any]:
    """The values as a plain list (fast to iterate or put in a set; pandas' own iteration over a
    string column costs a method call per element)."""
    out: list[Any] = values.to_numpy(dtype=object).tolist()
    return out


def object_array(values: pd.Series) -> npt.NDArray[np.object_]:
    """The values as a fresh object array with every missing value (NaN, NA, NaT) as None."""
    arr = np.array(values.to_numpy(dtype=object), dtype=object, copy=True)
    missing = values.isna().to_numpy()
    if missing.any():
        arr[missing] = None
    return arr


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]``, or an all-missing object Series when staging has no such column yet.

    Rule inputs default to empty frames without columns (an object never extracted), so
    every rule reads through this instead of failing with KeyError.
    """
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _stripped_text(values: pd.Series) -> pd.Series | None:
    """:func:`as_text` of a column holding text, or None when it holds other objects too.

    One Python pass (pandas' ``.str.strip`` costs twice as much). When every present value is
    a ``str`` (one C-speed check) the pass needs no missing mask and no copy of the column
    first, and without missing values no per-value branch either.
    """
    present = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(present, skipna=False) == "string":  # no missing value
        stripped = np.fromiter(map(str.strip, present), dtype=object, count=len(present))
        stripped[stripped == ""] = None
        return pd.Series(pd.array(stripped, dtype="str"), index=values.index)
    if pd.api.types.infer_dtype(present, skipna=True) == "string":
        text = [(v.strip() or None) if isinstance(v, str) else None for v in present]
        return pd.Series(pd.array(np.array(text, dtype=object), dtype="str"), index=values.index)
    raw = object_array(values)
    try:
        mixed = [None if v is None else (v.strip() or None) for v in raw]
    except (AttributeError, TypeError):  # numbers or other objects mixed in: the slow path
        return None
    return pd.Series(np.array(mixed, dtype=object), index=values.index, dtype="str")


def as_text(values: pd.Series) -> pd.Series:
    """Values as stripped strings (``str`` dtype), blanks -> NA; integral floats lose ``.0``.

    Ids staged from JSON can come back as integers or, with missing values, as floats
    (``123.0``); comparing them to string ids needs ``"123"``.
    """
    if values.empty:
        return pd.Series([], index=values.index, dtype="str")
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = _stripped_text(values)
        if text is not None:
            return text
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map({True: "true", False: "false"}).astype("str")
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if bool((finite == np.floor(finite)).all()):
            values = values.astype("Int64")
    out = values.astype("str").where(values.notna())
    out = out.str.strip()
    return out.where(out != "").astype("str")


def upper_codes(values: pd.Series) -> pd.Series:
    """``values.str.upper()`` for text with few distinct values (ISO currency codes): each
    distinct value is upper-cased once and equal cells share that one string, where
    ``.str.upper()`` makes a new string per cell (a million ``"USD"`` strings at full size)."""
    codes, uniques = pd.factorize(values)
    upper = pd.Series(uniques, dtype=values.dtype).str.upper().array
    return pd.Series(upper.take(codes, allow_fill=True), index=values.index, name=values.name)


def as_bool(values: pd.Series) -> pd.Series:
    """Truthy staged values (True, 1, "true", "yes", ...) -> True; everything else -> False."""
    if values.empty:
        return pd.Series([], index=values.index, dtype=bool)
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.fillna(False).astype(bool)
    text = values.astype("str").where(values.notna()).str.strip().str.lower()
    return text.isin(_TRUE_TEXT).astype(bool)


def as_timestamp(values: pd.Series) -> pd.Series:
    """Timestamps as tz-aware UTC ``datetime64``; ISO 8601 text or epoch milliseconds; bad -> NaT.

    Salesforce sends ``2026-01-02T03:04:05.000+0000``, HubSpot ``2026-01-02T03:04:05.123Z`` and,
    for some properties, epoch milliseconds; naive values are taken as UTC.
    """
    if values.empty:
        return pd.Series([], index=values.index, dtype="datetime64[us, UTC]")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        out = pd.to_datetime(values, utc=True)
        return out.astype("datetime64[us, UTC]")
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return pd.to_datetime(values, unit="ms", utc=True, errors="coerce").astype("datetime64[us, UTC]")
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601").astype("datetime64[us, UTC]")
    text = values.astype("str").where(values.notna() & parsed.isna()).str.strip()
    numeric = text.str.fullmatch(r"\d{10,}").fillna(False).astype(bool)
    if bool(numeric.any()):
        millis = pd.to_datetime(
            pd.to_numeric(text.where(numeric), errors="coerce"), unit="ms", utc=True, errors="coerce"
        ).astype("datetime64[us, UTC]")
        parsed = parsed.where(~numeric, millis)
    return parsed


def first_present(*series: pd.Series) -> pd.Series:
    """Element-wise first non-missing value of aligned Series (e.g. LastModifiedDate, then
    SystemModstamp)."""
    out = series[0]
    for s in series[1:]:
        out = out.where(out.notna(), s)
    return out


__all__ = [
    "GENERIC_DOMAINS",
    "LEGAL_SUFFIXES",
    "as_bool",
    "as_text",
    "as_timestamp",
    "column",
    "company_name_keys",
    "domain_key",
    "domain_keys",
    "first_present",
    "map_unique",
    "normalize_company_name",
    "normalize_domain",
    "normalize_emails",
    "object_array",
    "salesforce_id18",
    "salesforce_ids18",
    "values_of",
]
