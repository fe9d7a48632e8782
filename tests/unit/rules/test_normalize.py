"""Normalization used by matching: domains and names (ACC-3, ACC-6), emails (CON-1), coercion."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from crm_sync.rules.normalize import (
    as_bool,
    as_text,
    as_timestamp,
    company_name_keys,
    domain_key,
    domain_keys,
    normalize_company_name,
    normalize_domain,
    normalize_emails,
    salesforce_id18,
)
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    "website",
    [
        "acme.com",
        "ACME.COM",
        "www.acme.com",
        "http://acme.com",
        "https://www.acme.com/",
        "HTTPS://WWW.Acme.com:8443/about/us?ref=x#top",
        "https://shop.eu.acme.com",
        "acme.com.",
        " www.acme.com ",
        "http://user:secret@acme.com",
    ],
)
def test_acc6_domain_strips_scheme_www_port_path_and_case(website: str) -> None:
    assert normalize_domain(website) == "acme.com"


@pytest.mark.parametrize(
    ("website", "expected"),
    [
        ("https://www.bbc.co.uk/news", "bbc.co.uk"),
        ("shop.acme.com.au", "acme.com.au"),
        ("acme.github.io", "acme.github.io"),  # a private PSL suffix: one site, not github.io
        ("other.github.io", "other.github.io"),
        ("MÜNCHEN.de", "xn--mnchen-3ya.de"),
    ],
)
def test_acc6_domain_is_the_registrable_domain(website: str, expected: str) -> None:
    assert normalize_domain(website) == expected


def test_acc3_email_address_yields_its_domain() -> None:
    assert normalize_domain("Jane.Doe@Sales.Acme.com") == "acme.com"


@pytest.mark.parametrize("website", ["http://127.0.0.1:8080/", "localhost", "intranet", "", "   ", None])
def test_acc6_hosts_without_public_suffix_have_no_domain(website: str | None) -> None:
    assert normalize_domain(website) is None


def test_acc6_webmail_and_social_domains_are_no_matching_key() -> None:
    assert normalize_domain("https://facebook.com/acme") == "facebook.com"
    assert domain_key("https://facebook.com/acme") is None
    assert domain_key("gmail.com") is None
    assert domain_key("https://acme.com") == "acme.com"


def test_acc6_vectorized_domain_keys_keep_index_and_missing() -> None:
    keys = domain_keys(pd.Series(["www.acme.com", None, "gmail.com", "acme.com"], index=[10, 11, 12, 13]))
    assert keys.index.tolist() == [10, 11, 12, 13]
    assert keys.tolist()[0] == "acme.com"
    assert keys.isna().tolist() == [False, True, True, False]


def test_acc6_domain_normalization_never_touches_the_network() -> None:
    """tldextract must use its bundled snapshot: a socket opened anywhere fails this run."""
    script = textwrap.dedent(
        """
        import sys

        def guard(event, args):
            if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
                raise RuntimeError(f"network access: {event} {args!r}")

        sys.addaudithook(guard)
        from crm_sync.rules.normalize import _extractor, normalize_domain

        assert _extractor().suffix_list_urls == ()
        assert normalize_domain("https://www.example.co.uk/x") == "example.co.uk"
        assert normalize_domain("https://foo.herokuapp.com") == "foo.herokuapp.com"
        print("offline-ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "offline-ok" in done.stdout


@pytest.mark.parametrize(
    "name",
    [
        "Acme",
        "ACME",
        "Acme Inc",
        "Acme, Inc.",
        "Acme Incorporated",
        "Acme LLC",
        "Acme L.L.C.",
        "Acme Ltd.",
        "Acme Limited",
        "Acme GmbH",
        "Acme AG",
        "Acme S.A.",
        "Acme SA",
        "Acme Corp.",
        "Acme Corporation",
        "Acme Co.",
        "Acme & Co.",
        "Acme PLC",
        "Acme B.V.",
        "Acme SAS",
        "Acme SARL",
        "Acme Pty Ltd",
        "Acme Pty. Ltd.",
        "Acme GmbH & Co. KG",
        "The Acme Company",
        "  acme   inc ",
        "Acmé",
    ],
)
def test_acc6_name_strips_case_punctuation_whitespace_and_legal_suffixes(name: str) -> None:
    assert normalize_company_name(name) == "acme"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Procter & Gamble Co.", "procter and gamble"),
        ("Procter and Gamble", "procter and gamble"),
        ("Joe's Pizza", "joes pizza"),
        ("Société Générale S.A.", "societe generale"),
        ("Grupo Bimbo, S.A. de C.V.", "grupo bimbo"),
        ("Acme Holdings Pty. Ltd.", "acme holdings"),
        ("Store #12", "store 12"),
        ("Company", "company"),  # never strip the last word
        ("Inc.", "inc"),
        ("L.L.C. Acme", "llc acme"),  # only trailing legal forms go
    ],
)
def test_acc6_name_normalization_examples(name: str, expected: str) -> None:
    assert normalize_company_name(name) == expected


@pytest.mark.parametrize("name", [None, "", "  ", "...", float("nan")])
def test_acc6_blank_names_have_no_key(name: object) -> None:
    assert normalize_company_name(name) is None


@given(st.text())
def test_acc6_name_normalization_is_idempotent(name: str) -> None:
    once = normalize_company_name(name)
    if once is not None:
        assert normalize_company_name(once) == once


@given(
    st.sampled_from(["", "http://", "https://", "HTTP://"]),
    st.sampled_from(["", "www.", "WWW.", "shop."]),
    st.sampled_from(["acme.com", "acme.co.uk", "Example.ORG", "bücher.de"]),
    st.sampled_from(["", ":8080", ":443"]),
    st.sampled_from(["", "/", "/about", "/a/b?x=1"]),
)
def test_acc6_domain_normalization_is_idempotent_and_ignores_decoration(
    scheme: str, sub: str, host: str, port: str, path: str
) -> None:
    decorated = normalize_domain(f"{scheme}{sub}{host}{port}{path}")
    assert decorated == normalize_domain(host)
    assert decorated is not None
    assert normalize_domain(decorated) == decorated


def test_acc6_vectorized_name_keys_match_the_scalar_function() -> None:
    names = pd.Series(["Acme Inc.", None, "acme", "Globex GmbH"])
    assert company_name_keys(names).tolist()[:1] + company_name_keys(names).tolist()[2:] == [
        "acme",
        "acme",
        "globex",
    ]
    assert pd.isna(company_name_keys(names).iloc[1])


def test_con1_emails_compare_case_and_whitespace_insensitively_and_invalid_is_missing() -> None:
    emails = normalize_emails(
        pd.Series([" Jane@Acme.COM ", "jane@acme.com", "not-an-email", "", None, "a@b"])
    )
    assert emails.tolist()[:2] == ["jane@acme.com", "jane@acme.com"]
    assert emails.isna().tolist() == [False, False, True, True, True, True]


def test_salesforce_15_char_ids_convert_to_18() -> None:
    assert salesforce_id18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert salesforce_id18("001A0000006Vm9rIAC") == "001A0000006Vm9rIAC"
    assert salesforce_id18(" ") is None


def test_staged_values_coerce_from_sqlite_text_and_typed_postgres_values() -> None:
    assert as_bool(pd.Series(["true", "0", None, 1, "Yes", False])).tolist() == [
        True,
        False,
        False,
        True,
        True,
        False,
    ]
    assert as_text(pd.Series([123.0, None, 7.0])).tolist()[::2] == ["123", "7"]
    text = as_text(pd.Series([" a ", "  ", None, float("nan"), pd.NA, "b"], dtype=object))
    assert str(text.dtype) == "str"
    assert text.isna().tolist() == [False, True, True, True, True, False]
    assert text.dropna().tolist() == ["a", "b"]
    assert as_text(pd.Series(["x ", 5, None], dtype=object)).tolist()[:2] == ["x", "5"]
    stamps = as_timestamp(
        pd.Series(["2026-01-02T03:04:05.000+0000", "2026-01-02T03:04:05Z", "1767322800000", "junk", None])
    )
    assert stamps.iloc[0] == stamps.iloc[1] == pd.Timestamp("2026-01-02T03:04:05Z")
    assert stamps.iloc[2] == pd.Timestamp("2026-01-02T03:00:00Z")
    assert stamps.iloc[3:].isna().all()
