"""Deterministic scenario generator: a realistic Salesforce org and HubSpot portal at any scale.

``crm-sandbox generate`` writes a scenario file (see DESIGN.md "Scenario files") that the
emulators load. The same seed and arguments give a byte-identical file, so scale tests and
benchmarks are reproducible and a failing run can be replayed exactly.

Why it is built this way:

* **Speed.** One million Opportunities (plus their accounts, contacts, contact roles and deals)
  must be written in well under two minutes on a small CI machine. Faker per record is far too
  slow, so Faker (seeded) is only used to build small pools of names, titles and phrases once;
  records combine pool entries with vectorised NumPy draws, and the JSON is streamed to the file
  one record per line instead of being built as one giant string.
* **Determinism.** Every object kind draws from its own NumPy generator derived from the seed
  (``SeedSequence(seed, spawn_key=kind)``), so changing ``--leads`` does not reshuffle accounts.
  Timestamps are derived from the seed and a fixed ``as_of`` instant, never from ``now()``.
* **Realism where the rules look.** Users (some inactive) and HubSpot owners that mostly map to
  them by name and email, with deliberate mismatches (OWN-1/OWN-2); Accounts with duplicate
  websites and names differing only by ``www.``, scheme, legal suffix or case (ACC-6); contacts
  with emails on their account's domain and some private contacts (ACC-4); leads sharing emails
  with contacts (CON-1); opportunities across record types, stages and currencies with created
  and close dates spread over years (DEAL-2/DEAL-8/DEAL-9, backfills), a few deleted (DEAL-4);
  contact roles (DEAL-6); and HubSpot companies, contacts and deals of which a configurable
  fraction are already linked (link properties on HubSpot, ``HubSpot_Id__c`` on Salesforce),
  with pipelines ``Salesforce - <record type>`` plus HubSpot's default pipeline (DEAL-2/DEAL-3).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from crm_sandbox.hubspot.store import DEFAULT_STAGES as HUBSPOT_DEFAULT_STAGES
from crm_sandbox.salesforce.schema import (
    ACCOUNT_TYPES,
    DEFAULT_STAGES,
    INDUSTRIES,
    LEAD_SOURCES,
    LEAD_STATUSES,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# ------------------------------------------------------------------------------------------------
# Salesforce Ids
# ------------------------------------------------------------------------------------------------

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SF_ID_RE = re.compile(r"^[0-9A-Za-z]{15}([A-Z0-5]{3})?$")

#: Salesforce key prefixes of the objects the sandbox knows.
KEY_PREFIXES: dict[str, str] = {
    "User": "005",
    "RecordType": "012",
    "OpportunityStage": "01J",
    "Account": "001",
    "Contact": "003",
    "Lead": "00Q",
    "Opportunity": "006",
    "OpportunityContactRole": "00K",
    "AssignmentRule": "01Q",
}

#: The "pod" characters after the key prefix; any two alphanumerics make a valid Id.
_POD = "8d"


def salesforce_id_checksum(body: str) -> str:
    """The 3-character case-safe suffix of a 15-character Salesforce Id.

    For each 5-character chunk, bit ``i`` is set when character ``i`` is an uppercase letter;
    the 0-31 value indexes ``A..Z0..5``. This is Salesforce's public algorithm, so Ids made here
    round-trip through any tool that validates or converts 15/18-character Ids.
    """
    if len(body) != 15:
        raise ValueError(f"a Salesforce Id body has 15 characters, got {len(body)}: {body!r}")
    out = []
    for start in (0, 5, 10):
        flags = "".join("1" if "A" <= ch <= "Z" else "0" for ch in body[start : start + 5])
        out.append(_CHECKSUM_ALPHABET[int(flags[::-1], 2)])
    return "".join(out)


def salesforce_id(prefix: str, number: int) -> str:
    """One 18-character Id for object key ``prefix`` and a sequence ``number`` (base62 tail)."""
    if len(prefix) != 3:
        raise ValueError(f"a key prefix has 3 characters, got {prefix!r}")
    tail = []
    for _ in range(10):
        number, digit = divmod(number, 62)
        tail.append(_BASE62[digit])
    body = prefix + _POD + "".join(reversed(tail))
    return body + salesforce_id_checksum(body)


def is_valid_salesforce_id(value: object, prefix: str | None = None) -> bool:
    """True for a well-formed 18-character Id whose checksum matches (and prefix, if given)."""
    if not isinstance(value, str) or len(value) != 18 or not _SF_ID_RE.match(value):
        return False
    if prefix is not None and not value.startswith(prefix):
        return False
    return salesforce_id_checksum(value[:15]) == value[15:]


def salesforce_ids(prefix: str, start: int, count: int) -> list[str]:
    """``count`` consecutive 18-character Ids, vectorised (millions per second).

    Equivalent to ``[salesforce_id(prefix, start + i) for i in range(count)]``.
    """
    if count <= 0:
        return []
    numbers = np.arange(start, start + count, dtype=np.int64)
    alphabet = np.frombuffer(_BASE62.encode(), dtype=np.uint8)
    body = np.empty((count, 15), dtype=np.uint8)
    body[:, :5] = np.frombuffer((prefix + _POD).encode(), dtype=np.uint8)
    for pos in range(14, 4, -1):
        body[:, pos] = alphabet[numbers % 62]
        numbers //= 62
    upper = ((body >= ord("A")) & (body <= ord("Z"))).reshape(count, 3, 5)
    bits = (upper * (1 << np.arange(5))).sum(axis=2)
    checksum = np.frombuffer(_CHECKSUM_ALPHABET.encode(), dtype=np.uint8)[bits]
    full = np.ascontiguousarray(np.concatenate([body, checksum], axis=1))
    text = full.tobytes().decode("ascii")
    return [text[i : i + 18] for i in range(0, len(text), 18)]


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------

DEFAULT_ORG_DOMAIN = "northwind-demo.com"
DEFAULT_START = "2019-01-01T00:00:00Z"
DEFAULT_AS_OF = "2026-03-31T00:00:00Z"


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``None`` counts are derived from ``accounts`` (see :meth:`resolved`)."""

    seed: int
    accounts: int
    contacts_per_account: int = 3
    leads: int | None = None
    opportunities: int | None = None
    record_types: int = 3
    hubspot_companies: int | None = None
    hubspot_contacts: int | None = None
    hubspot_deals: int | None = None
    linked_fraction: float = 0.4
    duplicate_fraction: float = 0.02
    users: int | None = None
    org_domain: str = DEFAULT_ORG_DOMAIN
    start: str = DEFAULT_START
    as_of: str = DEFAULT_AS_OF

    def resolved(self) -> GeneratorConfig:
        """Fill derived defaults and check ranges; raises ``ValueError`` naming the bad option."""
        n = self.accounts
        cfg = replace(
            self,
            leads=n if self.leads is None else self.leads,
            opportunities=2 * n if self.opportunities is None else self.opportunities,
            hubspot_companies=n // 2 if self.hubspot_companies is None else self.hubspot_companies,
            hubspot_contacts=(n * self.contacts_per_account) // 2
            if self.hubspot_contacts is None
            else self.hubspot_contacts,
            users=min(2000, max(6, n // 100)) if self.users is None else self.users,
        )
        cfg = replace(
            cfg,
            hubspot_deals=(cfg.opportunities or 0) // 2 if self.hubspot_deals is None else self.hubspot_deals,
        )
        counts = {
            "accounts": cfg.accounts,
            "contacts_per_account": cfg.contacts_per_account,
            "leads": cfg.leads,
            "opportunities": cfg.opportunities,
            "record_types": cfg.record_types,
            "hubspot_companies": cfg.hubspot_companies,
            "hubspot_contacts": cfg.hubspot_contacts,
            "hubspot_deals": cfg.hubspot_deals,
        }
        for name, value in counts.items():
            if value is None or value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if (cfg.users or 0) < 1:
            raise ValueError(f"--users must be >= 1 (the integration user), got {cfg.users}")
        if (cfg.opportunities or 0) > 0 and cfg.accounts == 0:
            raise ValueError("--opportunities needs at least one account (--accounts >= 1)")
        if (cfg.hubspot_deals or 0) > 0 and (cfg.hubspot_companies or 0) == 0 and cfg.opportunities == 0:
            raise ValueError("--hubspot-deals needs --hubspot-companies >= 1 or some opportunities")
        for name in ("linked_fraction", "duplicate_fraction"):
            value = getattr(cfg, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
        if _epoch(cfg.start) >= _epoch(cfg.as_of):
            raise ValueError(f"--start ({cfg.start}) must be before --as-of ({cfg.as_of})")
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", cfg.org_domain):
            raise ValueError(f"--org-domain must be a lowercase domain name, got {cfg.org_domain!r}")
        return cfg


def _epoch(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO timestamp: {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


# ------------------------------------------------------------------------------------------------
# Fixed vocabularies (Salesforce and HubSpot picklists as a fresh org ships them)
# ------------------------------------------------------------------------------------------------
# Picklists the emulators also know are imported from them, so generated records always hold
# values the emulator accepts. The weights below pair with those tuples' order.

#: Salesforce's default Opportunity stage picklist (the emulator's own defaults):
#: (label, probability %, closed, won).
OPPORTUNITY_STAGES: tuple[tuple[str, int, bool, bool], ...] = tuple(
    (s["ApiName"], int(s["DefaultProbability"]), s["IsClosed"], s["IsWon"]) for s in DEFAULT_STAGES
)
_OPEN_STAGES = [i for i, s in enumerate(OPPORTUNITY_STAGES) if not s[2]]
_WON_STAGE = 8
_LOST_STAGE = 9

#: HubSpot's default deal pipeline, as a new portal (and the HubSpot emulator) has it.
DEFAULT_PIPELINE: dict[str, Any] = {
    "id": "default",
    "label": "Sales Pipeline",
    "displayOrder": 0,
    "stages": [
        {"id": sid, "label": label, "displayOrder": i, "metadata": {"probability": p, "isClosed": c}}
        for i, (sid, label, c, p) in enumerate(HUBSPOT_DEFAULT_STAGES)
    ],
}

RECORD_TYPE_NAMES = (
    "New Business",
    "Renewal",
    "Upsell",
    "Partner",
    "Services",
    "Enterprise",
    "Channel",
    "Expansion",
)
_ACCOUNT_TYPE_WEIGHTS = (0.3, 0.35, 0.12, 0.08, 0.05, 0.05, 0.05)
_NOUNS = (
    "Logistics", "Analytics", "Systems", "Labs", "Robotics", "Foods", "Energy", "Health",
    "Capital", "Media", "Software", "Dynamics", "Networks", "Solutions", "Partners", "Industries",
    "Consulting", "Manufacturing", "Pharma", "Motors", "Textiles", "Foundry", "Works", "Studios",
    "Ventures", "Freight", "Aerospace", "Biotech", "Data", "Cloud", "Security", "Materials",
    "Instruments", "Outfitters", "Brewing", "Farms", "Marine", "Medical", "Design", "Digital",
    "Electric", "Finance", "Insurance", "Learning", "Mobility", "Optics", "Packaging", "Retail",
    "Supply", "Telecom", "Travel", "Water", "Wireless", "Builders", "Chemicals", "Interactive",
    "Semiconductors", "Apparel", "Hospitality", "Agritech",
)  # fmt: skip
_PREFIXES = (
    "Northern", "Southern", "Eastern", "Western", "Pacific", "Atlantic", "Global", "United",
    "First", "Summit", "Pioneer", "Evergreen", "Granite", "Silver", "Blue", "Red", "Golden",
    "Coastal", "Prairie", "Metro", "Alpine", "Liberty", "Heritage", "Apex", "Vertex", "Nova",
    "Bright", "Clear", "Swift", "Prime",
)  # fmt: skip
_LEGAL_SUFFIXES = ("Inc.", "LLC", "Ltd", "GmbH", "Corp.", "Co.", "AG", "S.A.")
_TLDS = (".com", ".com", ".com", ".com", ".io", ".co", ".net", ".de", ".co.uk", ".fr", ".ca")
#: (country, currency, weight, cities)
_COUNTRIES: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    (
        "United States",
        "USD",
        0.55,
        ("New York", "Chicago", "Austin", "Seattle", "Boston", "Denver", "Atlanta"),
    ),
    ("United Kingdom", "GBP", 0.10, ("London", "Manchester", "Bristol", "Leeds", "Edinburgh")),
    ("Germany", "EUR", 0.10, ("Berlin", "Munich", "Hamburg", "Cologne", "Frankfurt")),
    ("France", "EUR", 0.07, ("Paris", "Lyon", "Toulouse", "Nantes")),
    ("Netherlands", "EUR", 0.04, ("Amsterdam", "Rotterdam", "Utrecht")),
    ("Spain", "EUR", 0.03, ("Madrid", "Barcelona", "Valencia")),
    ("Canada", "CAD", 0.07, ("Toronto", "Vancouver", "Montreal", "Calgary")),
    ("Australia", "AUD", 0.04, ("Sydney", "Melbourne", "Brisbane")),
)
_FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "proton.me")
_LEAD_STATUS_WEIGHTS = (0.35, 0.3, 0.15, 0.2)
#: The emulator's Opportunity ``Type`` values (schema.OPPORTUNITY_TYPES), in the order the
#: weights below pair with; not imported because the emulator lists them in another order.
_OPP_TYPES = (
    "New Customer",
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
)
_OPP_TYPE_WEIGHTS = (0.5, 0.3, 0.1, 0.1)
_PRODUCTS = (
    "Platform License", "Annual Subscription", "Implementation", "Support Plan", "Expansion Seats",
    "Data Add-on", "Training", "Pilot", "Enterprise Upgrade", "Multi-year Renewal",
)  # fmt: skip
_ROLES = (
    "Decision Maker", "Economic Buyer", "Technical Buyer", "Evaluator", "Influencer",
    "Business User", "Executive Sponsor", "Other",
)  # fmt: skip
_HS_LIFECYCLE = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
)
_HS_COMPANY_SOURCES = ("CRM_UI", "IMPORT", "FORM", "INTEGRATION")

#: HubSpot-defined association type ids (v4): contact->company primary, deal->company primary,
#: deal->contact.
ASSOC_CONTACT_TO_COMPANY = 1
ASSOC_DEAL_TO_COMPANY = 5
ASSOC_DEAL_TO_CONTACT = 3

_DAY = 86_400


# ------------------------------------------------------------------------------------------------
# Pools and helpers
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pools:
    """Small vocabularies built once with a seeded Faker, then combined by index."""

    first_names: list[str]
    last_names: list[str]
    jobs: list[str]
    phrases: list[str]


def _unique(make: Callable[[], str], size: int, clean: Callable[[str], str] = str.strip) -> list[str]:
    seen: dict[str, None] = {}
    attempts = 0
    while len(seen) < size and attempts < size * 20:
        seen.setdefault(clean(make()), None)
        attempts += 1
    return [s for s in seen if s]


def _build_pools(seed: int) -> _Pools:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)

    def simple_name(text: str) -> str:
        # Keep pool entries to one plain word so emails and domains derived from them are clean.
        return re.sub(r"[^A-Za-z]", "", text)

    return _Pools(
        first_names=_unique(fake.first_name, 400, simple_name),
        last_names=_unique(fake.last_name, 900, simple_name),
        jobs=_unique(fake.job, 200),
        phrases=_unique(fake.catch_phrase, 300),
    )


def _rng(seed: int, kind: str) -> np.random.Generator:
    """An independent stream per object kind, so one count's change leaves the others alone."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(zlib.crc32(kind.encode()),)))


def _sf_times(epochs: IntArray) -> list[str]:
    """Salesforce datetime literals (``2024-03-05T12:34:56.000+0000``), vectorised."""
    if len(epochs) == 0:
        return []
    text = np.datetime_as_string(epochs.astype("datetime64[s]"), unit="s")
    return [t + ".000+0000" for t in text.tolist()]


def _hs_times(epochs: IntArray) -> list[str]:
    """HubSpot timestamps (``2024-03-05T12:34:56.000Z``), vectorised."""
    if len(epochs) == 0:
        return []
    text = np.datetime_as_string(epochs.astype("datetime64[s]"), unit="s")
    return [t + ".000Z" for t in text.tolist()]


def _dates(epochs: IntArray) -> list[str]:
    if len(epochs) == 0:
        return []
    return [
        str(d)
        for d in np.datetime_as_string(
            epochs.astype("datetime64[s]").astype("datetime64[D]"), unit="D"
        ).tolist()
    ]


def _weighted(rng: np.random.Generator, weights: Iterable[float], size: int) -> IntArray:
    w = np.asarray(list(weights), dtype=np.float64)
    return rng.choice(len(w), size=size, p=w / w.sum()).astype(np.int64)


def _spread_after(rng: np.random.Generator, earliest: IntArray, latest: int) -> IntArray:
    """A uniform instant between each ``earliest`` and ``latest`` (inclusive of equal bounds)."""
    span = np.maximum(latest - earliest, 0)
    return earliest + (rng.random(len(earliest)) * span).astype(np.int64)


def _modified(
    rng: np.random.Generator, created: IntArray, as_of: int, recent_share: float = 0.12
) -> IntArray:
    """Last-modified instants: mostly soon after creation, some touched in the last 90 days.

    The recent ones matter for ACC-2 and DEAL-9: records that existed before sync enabled at and
    were modified afterwards.
    """
    n = len(created)
    soon = created + (rng.exponential(30 * _DAY, n)).astype(np.int64)
    recent = as_of - (rng.random(n) * 90 * _DAY).astype(np.int64)
    out = np.where(rng.random(n) < recent_share, np.maximum(recent, created), soon)
    return np.minimum(out, as_of).astype(np.int64)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


class _CompanyNames:
    """Unique company base names and domains by combination index.

    Index ``i`` maps to ``<prefix?> <LastName> <Noun>`` (plus a number in the far tier), so any
    number of distinct names exists and their normalised forms never collide by accident: only
    the deliberate duplicates form ACC-6 groups.
    """

    def __init__(self, last_names: list[str]) -> None:
        self.last_names = last_names
        self.base = len(last_names) * len(_NOUNS)

    def name(self, index: int) -> str:
        last = self.last_names[index % len(self.last_names)]
        noun = _NOUNS[(index // len(self.last_names)) % len(_NOUNS)]
        tier = index // self.base
        words = [last, noun]
        if tier:
            # tiers 1..30 add a prefix word; beyond, the prefixes repeat with a number (2, 3, ...)
            cycle, prefix = divmod(tier - 1, len(_PREFIXES))
            words.insert(0, _PREFIXES[prefix])
            if cycle:
                words.append(str(cycle + 1))
        return " ".join(words)


def _distinct_indices(rng: np.random.Generator, need: int, space_min: int) -> IntArray:
    """``need`` distinct combination indices, drawn from the smallest space that fits them."""
    space = max(space_min, 2 * need)
    if need == 0:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(space, size=need, replace=False).astype(np.int64)


def _pick_distinct(rng: np.random.Generator, population: int, size: int) -> IntArray:
    size = min(size, population)
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(rng.choice(population, size=size, replace=False)).astype(np.int64)


# ------------------------------------------------------------------------------------------------
# The plan: every column of every object, before anything is written
# ------------------------------------------------------------------------------------------------


@dataclass
class _Org:
    """Everything generated, as columns; SF link ids are filled in while HubSpot is planned."""

    cfg: GeneratorConfig
    start: int
    as_of: int
    pools: _Pools
    # users
    user_ids: list[str] = field(default_factory=list)
    user_first: list[str] = field(default_factory=list)
    user_last: list[str] = field(default_factory=list)
    user_email: list[str] = field(default_factory=list)
    user_active: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    active_users: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    inactive_users: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    user_owner: dict[int, str] = field(default_factory=dict)  # user index -> HS owner id (same email)
    owners: list[dict[str, Any]] = field(default_factory=list)
    record_type_ids: list[str] = field(default_factory=list)
    record_type_names: list[str] = field(default_factory=list)
    pipeline_ids: list[str] = field(default_factory=list)
    pipeline_stage_ids: list[list[str]] = field(default_factory=list)
    # accounts
    account_ids: list[str] = field(default_factory=list)
    account_names: list[str] = field(default_factory=list)
    account_base: list[str] = field(default_factory=list)
    account_domain: list[str] = field(default_factory=list)
    account_website: list[str | None] = field(default_factory=list)
    account_owner: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    account_created: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    account_currency: list[str] = field(default_factory=list)
    account_country: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    account_hs: dict[int, str] = field(default_factory=dict)
    duplicate_of: dict[int, int] = field(default_factory=dict)
    # contacts
    contact_ids: list[str] = field(default_factory=list)
    contact_first: list[str] = field(default_factory=list)
    contact_last: list[str] = field(default_factory=list)
    contact_email: list[str] = field(default_factory=list)
    contact_account: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # -1: private
    contact_owner: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    contact_created: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    contact_title: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    contact_hs: dict[int, str] = field(default_factory=dict)
    # leads
    lead_ids: list[str] = field(default_factory=list)
    lead_first: list[str] = field(default_factory=list)
    lead_last: list[str] = field(default_factory=list)
    lead_email: list[str] = field(default_factory=list)
    lead_company: list[str] = field(default_factory=list)
    lead_owner: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lead_created: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lead_title: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lead_status: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lead_hs: dict[int, str] = field(default_factory=dict)
    # opportunities
    opp_ids: list[str] = field(default_factory=list)
    opp_account: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opp_record_type: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opp_stage: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opp_created: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opp_close: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opp_cents: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opp_owner: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opp_type: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opp_product: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opp_currency: list[str] = field(default_factory=list)
    opp_deleted: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    opp_names: list[str] = field(default_factory=list)
    opp_hs: dict[int, str] = field(default_factory=dict)
    # contact roles: parallel arrays
    role_opp: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    role_contact: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    role_primary: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    role_kind: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # hubspot
    associations: list[tuple[str, str, str, str, int]] = field(default_factory=list)


def _id_start(seed: int, kind: str) -> int:
    """Where a kind's Id sequence starts: seed-derived, so two seeds give different Ids."""
    return int(_rng(seed, "id-" + kind).integers(62**5, 62**6))


def _plan_users(org: _Org) -> None:
    cfg, pools = org.cfg, org.pools
    rng = _rng(cfg.seed, "users")
    n = cfg.users or 1
    org.user_ids = salesforce_ids(KEY_PREFIXES["User"], _id_start(cfg.seed, "User"), n)
    first, last, emails = ["Integration"], ["User"], [f"integration@{cfg.org_domain}"]
    seen = set(emails)
    fi = rng.integers(0, len(pools.first_names), n)
    la = rng.integers(0, len(pools.last_names), n)
    for i in range(1, n):
        f, s = pools.first_names[fi[i]], pools.last_names[la[i]]
        email = f"{f}.{s}@{cfg.org_domain}".lower()
        k = 2
        while email in seen:
            email = f"{f}.{s}{k}@{cfg.org_domain}".lower()
            k += 1
        seen.add(email)
        first.append(f)
        last.append(s)
        emails.append(email)
    active = rng.random(n) >= 0.12
    active[0] = True  # the integration user must be active and is listed first (session user)
    if n > 2 and active[1:].all():
        active[n - 1] = False  # always at least one inactive user to exercise OWN-2
    org.user_first, org.user_last, org.user_email, org.user_active = first, last, emails, active
    humans = np.arange(1, n, dtype=np.int64)
    org.active_users = humans[active[1:]] if n > 1 else np.zeros(0, dtype=np.int64)
    if len(org.active_users) == 0:
        org.active_users = np.zeros(1, dtype=np.int64)  # only the integration user exists
    org.inactive_users = humans[~active[1:]] if n > 1 else np.zeros(0, dtype=np.int64)

    # HubSpot owners: most match a SF user by name and email (OWN-1); some match the name but
    # not the email, some the email but not the name (OWN-2), some have no SF user at all.
    n_owners = max(2, round(0.9 * (n - 1))) if n > 1 else 1
    kinds = rng.random(n_owners)
    owner_first = rng.integers(0, len(pools.first_names), n_owners)
    owner_last = rng.integers(0, len(pools.last_names), n_owners)
    ts = _hs_times(org.start - rng.integers(30, 400, n_owners) * _DAY)
    for j in range(n_owners):
        user = j + 1 if j + 1 < n else None
        if user is not None and kinds[j] < 0.78:
            f, s, email = first[user], last[user], emails[user]
            if kinds[j] < 0.06:  # same person, different case/whitespace (still OWN-1)
                f, email = f.upper(), email.upper()
            elif kinds[j] < 0.1:
                s = f" {s} "
            org.user_owner[user] = str(100_000_001 + j)
        elif user is not None and kinds[j] < 0.86:  # name matches, email does not
            f, s = first[user], last[user]
            email = f"{f}.{s}@{_FREE_MAIL[j % len(_FREE_MAIL)]}".lower()
        elif user is not None and kinds[j] < 0.92:  # email matches, name does not (nickname)
            f = pools.first_names[owner_first[j]]
            s, email = last[user], emails[user]
            org.user_owner[user] = str(100_000_001 + j)
        else:  # an owner with no Salesforce user
            f = pools.first_names[owner_first[j]]
            s = pools.last_names[owner_last[j]]
            email = f"{f}.{s}.hs{j}@{cfg.org_domain}".lower()
        org.owners.append(
            {
                "id": str(100_000_001 + j),
                "email": email,
                "firstName": f,
                "lastName": s,
                "userId": 9_000_001 + j,
                "createdAt": ts[j],
                "updatedAt": ts[j],
                "archived": False,
            }
        )


def _plan_record_types(org: _Org) -> None:
    cfg = org.cfg
    n = cfg.record_types
    names = [RECORD_TYPE_NAMES[i] if i < len(RECORD_TYPE_NAMES) else f"Record Type {i + 1}" for i in range(n)]
    org.record_type_names = names
    org.record_type_ids = salesforce_ids(KEY_PREFIXES["RecordType"], _id_start(cfg.seed, "RecordType"), n)
    # DEAL-2: one synced pipeline per record type; a single (or no) record type gets the
    # "Standard pipeline".
    labels = [f"Salesforce - {name}" for name in names] if n >= 2 else ["Salesforce - Standard pipeline"]
    org.pipeline_ids = [str(7_000_001 + i) for i in range(len(labels))]
    org.pipeline_stage_ids = [
        [f"{pid}{s + 1:02d}" for s in range(len(OPPORTUNITY_STAGES))] for pid in org.pipeline_ids
    ]


def _plan_accounts(org: _Org, names: _CompanyNames, combos: IntArray) -> None:
    """Accounts, a ``duplicate_fraction`` of which repeat another account (ACC-6)."""
    cfg = org.cfg
    rng = _rng(cfg.seed, "accounts")
    n = cfg.accounts
    org.account_ids = salesforce_ids(KEY_PREFIXES["Account"], _id_start(cfg.seed, "Account"), n)
    n_dup = min(round(cfg.duplicate_fraction * n), max(n - 1, 0))
    is_dup = np.zeros(n, dtype=np.bool_)
    is_dup[_pick_distinct(rng, n, n_dup)] = True
    originals = np.flatnonzero(~is_dup)
    suffix = rng.integers(-len(_LEGAL_SUFFIXES), len(_LEGAL_SUFFIXES), n)  # negative: no suffix
    tld = rng.integers(0, len(_TLDS), n)
    form = rng.integers(0, 5, n)
    variant = rng.integers(0, 6, n)
    source = (
        originals[rng.integers(0, max(len(originals), 1), n)] if len(originals) else np.zeros(n, np.int64)
    )
    no_site = (rng.random(n) < 0.03) & ~is_dup
    no_site[source[is_dup]] = False  # a duplicated original keeps its website so the pair shows

    base_names = [""] * n
    domains = [""] * n
    seen: set[str] = set()
    for i in originals.tolist():
        base = names.name(int(combos[i]))
        slug, ext = _slug(base), _TLDS[tld[i]]
        domain, k = slug + ext, 2
        while domain in seen:
            domain, k = f"{slug}{k}{ext}", k + 1
        seen.add(domain)
        base_names[i], domains[i] = base, domain

    display: list[str] = []
    websites: list[str | None] = []
    for i in range(n):
        if is_dup[i]:
            # ACC-6: the same company entered twice, differing only by www./scheme/suffix/case.
            orig = int(source[i])
            org.duplicate_of[i] = orig
            base_names[i], domains[i] = base_names[orig], domains[orig]
            v = int(variant[i])
            website = _website(domains[i], (int(form[orig]) + 1 + v % 4) % 5)
            name = _with_suffix(base_names[i], int(suffix[orig]))
            if v == 0:
                name = name.upper()
            elif v == 1:
                name = name.lower()
            elif v in (2, 3):
                name = _with_suffix(base_names[i], (max(int(suffix[orig]), 0) + 1) % len(_LEGAL_SUFFIXES))
            else:
                name = base_names[i] if name != base_names[i] else base_names[i] + ", Inc."
            if v % 2 == 1:
                website = website.upper()
        else:
            name = _with_suffix(base_names[i], int(suffix[i]))
            website = _website(domains[i], int(form[i]))
        display.append(name)
        websites.append(None if no_site[i] else website)
    org.account_base, org.account_domain = base_names, domains
    org.account_names, org.account_website = display, websites
    org.account_created = _spread_after(rng, np.full(n, org.start, dtype=np.int64), org.as_of - 20 * _DAY)
    owners = org.active_users[rng.integers(0, len(org.active_users), n)]
    if len(org.inactive_users):
        # Owners who left the company: OWN-4 keeps an existing owner only when active.
        gone = org.inactive_users[rng.integers(0, len(org.inactive_users), n)]
        owners = np.where(rng.random(n) < 0.05, gone, owners)
    org.account_owner = owners.astype(np.int64)
    org.account_country = _weighted(rng, (c[2] for c in _COUNTRIES), n)
    org.account_currency = [_COUNTRIES[c][1] for c in org.account_country.tolist()]


def _with_suffix(base: str, suffix: int) -> str:
    return f"{base} {_LEGAL_SUFFIXES[suffix]}" if suffix >= 0 else base


def _website(domain: str, form: int) -> str:
    forms = (f"https://www.{domain}", f"http://www.{domain}", f"www.{domain}", f"https://{domain}", domain)
    return forms[form % 5]


def _person_email(first: str, last: str, domain: str, style: int) -> str:
    local = f"{first}.{last}" if style < 7 else (f"{first[:1]}{last}" if style < 9 else f"{first}_{last}")
    return f"{local}@{domain}".lower()


def _plan_contacts(org: _Org) -> None:
    """Contacts on their account's email domain; about 1% private (no Account, ACC-4)."""
    cfg, pools = org.cfg, org.pools
    rng = _rng(cfg.seed, "contacts")
    k, n_acc = cfg.contacts_per_account, cfg.accounts
    n = n_acc * k
    org.contact_ids = salesforce_ids(KEY_PREFIXES["Contact"], _id_start(cfg.seed, "Contact"), n)
    account = np.repeat(np.arange(n_acc, dtype=np.int64), k)
    private = rng.random(n) < 0.01
    account = np.where(private, -1, account)
    fi = rng.integers(0, len(pools.first_names), n)
    la = rng.integers(0, len(pools.last_names), n)
    style = rng.integers(0, 10, n)
    free = rng.integers(0, len(_FREE_MAIL), n)
    first = [pools.first_names[i] for i in fi.tolist()]
    last = [pools.last_names[i] for i in la.tolist()]
    domains = org.account_domain
    org.contact_email = [
        _person_email(f, s, domains[a] if a >= 0 else _FREE_MAIL[m], st)
        for f, s, a, st, m in zip(first, last, account.tolist(), style.tolist(), free.tolist(), strict=True)
    ]
    org.contact_first, org.contact_last, org.contact_account = first, last, account
    earliest = np.where(account >= 0, org.account_created[np.maximum(account, 0)], org.start)
    org.contact_created = _spread_after(rng, earliest.astype(np.int64), org.as_of - 10 * _DAY)
    acct_owner = org.account_owner[np.maximum(account, 0)] if n_acc else np.zeros(n, np.int64)
    other = org.active_users[rng.integers(0, len(org.active_users), n)]
    org.contact_owner = np.where((rng.random(n) < 0.85) & (account >= 0), acct_owner, other).astype(np.int64)
    org.contact_title = rng.integers(0, len(pools.jobs), n)


def _plan_leads(org: _Org, names: _CompanyNames, lead_combos: IntArray) -> None:
    """Leads: mostly new companies; some at existing accounts, some sharing a Contact's email."""
    cfg, pools = org.cfg, org.pools
    rng = _rng(cfg.seed, "leads")
    n = cfg.leads or 0
    org.lead_ids = salesforce_ids(KEY_PREFIXES["Lead"], _id_start(cfg.seed, "Lead"), n)
    kind = rng.random(n)
    fi = rng.integers(0, len(pools.first_names), n)
    la = rng.integers(0, len(pools.last_names), n)
    style = rng.integers(0, 10, n)
    acct = rng.integers(0, max(cfg.accounts, 1), n)
    contact = rng.integers(0, max(len(org.contact_ids), 1), n)
    pool = rng.integers(0, max(len(lead_combos), 1), n)
    first, last, email, company = [], [], [], []
    for i in range(n):
        if kind[i] < 0.04 and org.contact_ids:
            # CON-1: the same person exists as a Contact and as a Lead (one email, two records).
            c = int(contact[i])
            f, s, e = org.contact_first[c], org.contact_last[c], org.contact_email[c]
            a = int(org.contact_account[c])
            comp = org.account_base[a] if a >= 0 else f"{s} Household"
        elif kind[i] < 0.16 and cfg.accounts:
            a = int(acct[i])
            f, s = pools.first_names[fi[i]], pools.last_names[la[i]]
            e = _person_email(f, s, org.account_domain[a], int(style[i]))
            comp = org.account_base[a]
        else:
            comp = names.name(int(lead_combos[pool[i]])) if len(lead_combos) else "Unknown"
            f, s = pools.first_names[fi[i]], pools.last_names[la[i]]
            e = _person_email(f, s, _slug(comp) + ".com", int(style[i]))
        first.append(f)
        last.append(s)
        email.append(e)
        company.append(comp)
    org.lead_first, org.lead_last, org.lead_email, org.lead_company = first, last, email, company
    org.lead_created = _spread_after(rng, np.full(n, org.start, dtype=np.int64), org.as_of - 2 * _DAY)
    org.lead_owner = org.active_users[rng.integers(0, len(org.active_users), n)].astype(np.int64)
    org.lead_title = rng.integers(0, len(pools.jobs), n)
    org.lead_status = _weighted(rng, _LEAD_STATUS_WEIGHTS, n)


def _plan_opportunities(org: _Org) -> None:
    """Opportunities over years, record types, stages and currencies; a few deleted (DEAL-4)."""
    cfg = org.cfg
    rng = _rng(cfg.seed, "opportunities")
    n = cfg.opportunities or 0
    org.opp_ids = salesforce_ids(KEY_PREFIXES["Opportunity"], _id_start(cfg.seed, "Opportunity"), n)
    acct = rng.integers(0, max(cfg.accounts, 1), n)
    org.opp_account = acct
    org.opp_record_type = rng.integers(0, cfg.record_types, n) if cfg.record_types else np.full(n, -1)
    created = _spread_after(
        rng, org.account_created[acct] if cfg.accounts else np.full(n, org.start), org.as_of
    )
    age = org.as_of - created
    p_closed = np.where(age > 180 * _DAY, 0.92, np.where(age > 60 * _DAY, 0.5, 0.15))
    closed = rng.random(n) < p_closed
    won = rng.random(n) < 0.45
    open_stage = np.asarray(_OPEN_STAGES, dtype=np.int64)[rng.integers(0, len(_OPEN_STAGES), n)]
    org.opp_stage = np.where(closed, np.where(won, _WON_STAGE, _LOST_STAGE), open_stage).astype(np.int64)
    closed_at = np.minimum(created + rng.integers(7, 240, n) * _DAY, org.as_of)
    planned = created + rng.integers(20, 270, n) * _DAY  # open deals may close in the future
    org.opp_close = np.where(closed, closed_at, planned).astype(np.int64)
    org.opp_created = created
    dollars = np.round(np.exp(rng.normal(np.log(15_000), 1.1, n)) / 10) * 10
    org.opp_cents = (np.maximum(dollars, 100) * 100).astype(np.int64)
    other = org.active_users[rng.integers(0, len(org.active_users), n)]
    org.opp_owner = np.where(rng.random(n) < 0.7, org.account_owner[acct], other).astype(np.int64)
    org.opp_type = _weighted(rng, _OPP_TYPE_WEIGHTS, n)
    org.opp_product = rng.integers(0, len(_PRODUCTS), n)
    same = rng.random(n) < 0.92  # DEAL-8: mostly the account's currency, some USD deals abroad
    org.opp_currency = [
        org.account_currency[a] if s else "USD" for a, s in zip(acct.tolist(), same.tolist(), strict=True)
    ]
    org.opp_deleted = rng.random(n) < 0.005
    years = (org.opp_close.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970).tolist()
    bases = org.account_base
    org.opp_names = [
        f"{bases[a]} - {_PRODUCTS[p]} {y}"
        for a, p, y in zip(acct.tolist(), org.opp_product.tolist(), years, strict=True)
    ]

    # DEAL-6: 0-2 contact roles per opportunity, on contacts of its account.
    k = cfg.contacts_per_account
    if k == 0 or n == 0:
        return
    per_opp = _weighted(rng, (0.25, 0.55, 0.2) if k >= 2 else (0.3, 0.7, 0.0), n)
    role_opp = np.repeat(np.arange(n, dtype=np.int64), per_opp)
    first_of = np.zeros(len(role_opp), dtype=np.bool_)
    starts = np.cumsum(per_opp) - per_opp
    first_of[starts[per_opp > 0]] = True
    o1 = rng.integers(0, k, n)
    o2 = (o1 + 1 + rng.integers(0, max(k - 1, 1), n)) % k
    offset = np.where(first_of, o1[role_opp], o2[role_opp])
    org.role_opp = role_opp
    org.role_contact = (acct[role_opp] * k + offset).astype(np.int64)
    org.role_primary = first_of
    org.role_kind = rng.integers(0, len(_ROLES), len(role_opp))


def _plan_hubspot(
    org: _Org, names: _CompanyNames, hs_combos: IntArray
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """HubSpot companies, contacts and deals; a ``linked_fraction`` of each already linked.

    Planned before any Salesforce record is written because linking also sets
    ``HubSpot_Id__c`` on the Salesforce side.
    """
    owners = [o["id"] for o in org.owners]
    companies = _plan_companies(org, names, hs_combos, owners)
    contacts = _plan_hs_contacts(org, companies, owners)
    deals = _plan_deals(org, companies, owners)
    return companies, contacts, deals


def _maybe_owner(
    rng: np.random.Generator, owners: list[str], n: int, share_unowned: float
) -> list[str | None]:
    pick = rng.integers(0, max(len(owners), 1), n)
    none = rng.random(n) < share_unowned
    return [
        None if (x or not owners) else owners[p] for p, x in zip(pick.tolist(), none.tolist(), strict=True)
    ]


def _plan_companies(
    org: _Org, names: _CompanyNames, hs_combos: IntArray, owners: list[str]
) -> list[dict[str, Any]]:
    cfg = org.cfg
    rng = _rng(cfg.seed, "hubspot-companies")
    total = cfg.hubspot_companies or 0
    n_linked = min(round(cfg.linked_fraction * total), cfg.accounts)
    linked = _pick_distinct(rng, cfg.accounts, n_linked)
    unlinked_total = total - n_linked
    free_accounts = np.setdiff1d(np.arange(cfg.accounts, dtype=np.int64), linked)
    # ACC-3: some unlinked companies have the domain of an unlinked account.
    same_domain = rng.permutation(free_accounts)[: min(round(0.3 * unlinked_total), len(free_accounts))]
    created = _spread_after(rng, np.full(total, org.start, dtype=np.int64), org.as_of - _DAY)
    updated = _modified(rng, created, org.as_of)
    lifecycle = _weighted(rng, (0.1, 0.3, 0.15, 0.15, 0.1, 0.2), total)
    random_owner = _maybe_owner(rng, owners, total, 0.12)
    source = rng.integers(0, len(_HS_COMPANY_SOURCES) - 1, total)
    auto = rng.random(total) < 0.15
    manual = rng.random(total) < 0.02
    ids = [str(20_000_000_001 + i) for i in range(total)]
    order = rng.permutation(total)  # interleave linked and unlinked companies by id
    created_s, updated_s = _hs_times(created), _hs_times(updated)
    account_updated = org.account_created  # linked companies follow the account's history
    out: list[dict[str, Any]] = []
    slots = order.tolist()
    for j in range(total):
        i = slots[j]
        cid = ids[i]
        props: dict[str, Any]
        if j < n_linked:
            a = int(linked[j])
            org.account_hs[a] = cid
            owner = org.user_owner.get(int(org.account_owner[a]))
            props = {
                "name": org.account_names[a],
                "domain": org.account_domain[a],
                "website": f"https://www.{org.account_domain[a]}",
                "hubspot_owner_id": owner,
                "lifecyclestage": _HS_LIFECYCLE[3 + int(lifecycle[i]) % 3],
                "salesforceaccountid": org.account_ids[a],
                "crm_sync_manual_sync": "false",
                "hs_object_source": "INTEGRATION",
            }
            c_at = _hs_times(np.asarray([account_updated[a]], dtype=np.int64))[0]
            rec = {"id": cid, "properties": props, "createdAt": c_at, "updatedAt": max(c_at, updated_s[i])}
        else:
            u = j - n_linked
            if u < len(same_domain):
                a = int(same_domain[u])
                name, domain = org.account_base[a], org.account_domain[a]
                src = _HS_COMPANY_SOURCES[source[i]]
            else:
                base = names.name(int(hs_combos[u - len(same_domain)]))
                domain = _slug(base) + ".com"
                if auto[i]:
                    # Auto-created from a contact's email domain: HubSpot names it after the domain.
                    name, src = domain.split(".")[0].capitalize(), "AUTOMATIC_COMPANY_CREATION"
                else:
                    name, src = base, _HS_COMPANY_SOURCES[source[i]]
            props = {
                "name": name,
                "domain": domain,
                "website": f"https://{domain}",
                "hubspot_owner_id": random_owner[i],
                "lifecyclestage": _HS_LIFECYCLE[int(lifecycle[i])],
                "crm_sync_manual_sync": "true" if manual[i] else "false",
                "hs_object_source": src,
            }
            rec = {"id": cid, "properties": props, "createdAt": created_s[i], "updatedAt": updated_s[i]}
        props_clean = {k: v for k, v in props.items() if v is not None}
        rec["properties"] = props_clean
        out.append(rec)
    out.sort(key=lambda r: int(r["id"]))
    return out


def _plan_hs_contacts(org: _Org, companies: list[dict[str, Any]], owners: list[str]) -> list[dict[str, Any]]:
    cfg, pools = org.cfg, org.pools
    rng = _rng(cfg.seed, "hubspot-contacts")
    total = cfg.hubspot_contacts or 0
    n_sf_contacts, n_leads = len(org.contact_ids), len(org.lead_ids)
    n_linked = min(round(cfg.linked_fraction * total), n_sf_contacts + n_leads)
    domain_company: dict[str, str] = {}
    for comp in companies:
        domain_company.setdefault(comp["properties"]["domain"], comp["id"])

    used: set[str] = set()
    people = rng.permutation(n_sf_contacts + n_leads)  # < n_sf_contacts: a Contact, else a Lead
    prefer_contact = rng.random(len(people)) < 0.75
    ordered = np.concatenate([people[prefer_contact], people[~prefer_contact]]) if len(people) else people

    def person(idx: int) -> tuple[str, str, str, str, str]:
        if idx < n_sf_contacts:
            a = int(org.contact_account[idx])
            comp = org.account_base[a] if a >= 0 else ""
            return (org.contact_first[idx], org.contact_last[idx], org.contact_email[idx], comp,
                    pools.jobs[int(org.contact_title[idx])])  # fmt: skip
        j = idx - n_sf_contacts
        return (org.lead_first[j], org.lead_last[j], org.lead_email[j], org.lead_company[j],
                pools.jobs[int(org.lead_title[j])])  # fmt: skip

    cursor = 0

    def next_person() -> int | None:
        nonlocal cursor
        while cursor < len(ordered):
            idx = int(ordered[cursor])
            cursor += 1
            email = org.contact_email[idx] if idx < n_sf_contacts else org.lead_email[idx - n_sf_contacts]
            if email not in used:
                used.add(email)
                return idx
        return None

    kind = rng.random(total)
    lifecycle = _weighted(rng, (0.15, 0.35, 0.2, 0.12, 0.1, 0.08), total)
    random_owner = _maybe_owner(rng, owners, total, 0.1)
    fi = rng.integers(0, len(pools.first_names), total)
    la = rng.integers(0, len(pools.last_names), total)
    title = rng.integers(0, len(pools.jobs), total)
    comp_pick = rng.integers(0, max(len(companies), 1), total)
    phone = _phones(rng, total)
    created = _spread_after(rng, np.full(total, org.start, dtype=np.int64), org.as_of - _DAY)
    updated = _modified(rng, created, org.as_of)
    created_s, updated_s = _hs_times(created), _hs_times(updated)
    out: list[dict[str, Any]] = []
    for i in range(total):
        hs_id = str(30_000_000_001 + i)
        props: dict[str, Any] = {}
        idx: int | None = None
        stage, owner = _HS_LIFECYCLE[int(lifecycle[i])], random_owner[i]
        if i < n_linked:
            idx = next_person()
            if idx is not None and idx < n_sf_contacts:
                org.contact_hs[idx] = hs_id
                props["salesforcecontactid"] = org.contact_ids[idx]
                stage = _HS_LIFECYCLE[3 + int(lifecycle[i]) % 3]
                owner = org.user_owner.get(int(org.contact_owner[idx]))
            elif idx is not None:
                lead = idx - n_sf_contacts
                org.lead_hs[lead] = hs_id
                props["salesforceleadid"] = org.lead_ids[lead]
                stage = _HS_LIFECYCLE[1 + int(lifecycle[i]) % 3]
                owner = org.user_owner.get(int(org.lead_owner[lead]))
        elif kind[i] < 0.2:
            idx = next_person()  # CON-1: unlinked, but a SF Contact/Lead has the same email
        if idx is not None:
            first, last, email, company, job = person(idx)
        else:
            first, last = pools.first_names[fi[i]], pools.last_names[la[i]]
            job = pools.jobs[int(title[i])]
            if kind[i] < 0.25:  # no email: fails the inclusion list's "email known" (CON-2)
                email, company = "", ""
            elif kind[i] < 0.3 or not companies:
                email, company = _person_email(first, last, _FREE_MAIL[i % len(_FREE_MAIL)], 0), ""
            else:
                comp = companies[int(comp_pick[i])]["properties"]
                email, company = _person_email(first, last, comp["domain"], int(title[i]) % 10), comp["name"]
            k = 2
            base_email = email
            while email and email in used:
                local, _, dom = base_email.partition("@")
                email, k = f"{local}{k}@{dom}", k + 1
            if email:
                used.add(email)
        props.update(
            {
                "email": email or None,
                "firstname": first,
                "lastname": last,
                "phone": phone[i],
                "company": company or None,
                "jobtitle": job,
                "hubspot_owner_id": owner,
                "lifecyclestage": stage,
            }
        )
        rec = {
            "id": hs_id,
            "properties": {k: v for k, v in props.items() if v is not None},
            "createdAt": created_s[i],
            "updatedAt": updated_s[i],
        }
        out.append(rec)
        if email:
            target = domain_company.get(email.rpartition("@")[2])
            if target is not None:
                org.associations.append(("contacts", hs_id, "companies", target, ASSOC_CONTACT_TO_COMPANY))
    return out


def _plan_deals(org: _Org, companies: list[dict[str, Any]], owners: list[str]) -> list[dict[str, Any]]:
    cfg = org.cfg
    rng = _rng(cfg.seed, "hubspot-deals")
    total = cfg.hubspot_deals or 0
    n_opps = len(org.opp_ids)
    n_linked = min(round(cfg.linked_fraction * total), n_opps)
    linked = rng.permutation(_pick_distinct(rng, n_opps, n_linked))
    company_contacts: dict[str, str] = {}
    for frm, fid, to, tid, _ in org.associations:
        if frm == "contacts" and to == "companies":
            company_contacts.setdefault(tid, fid)
    n_unlinked = total - n_linked
    in_synced = rng.random(n_unlinked) < 0.7  # the rest sit in the default pipeline (DEAL-3)
    pipe = rng.integers(0, len(org.pipeline_ids), n_unlinked)
    stage = rng.integers(0, len(OPPORTUNITY_STAGES), n_unlinked)
    default_stage = rng.integers(0, len(DEFAULT_PIPELINE["stages"]), n_unlinked)
    comp_pick = rng.integers(0, max(len(companies), 1), n_unlinked)
    product = rng.integers(0, len(_PRODUCTS), n_unlinked)
    dollars = np.round(np.exp(rng.normal(np.log(12_000), 1.0, n_unlinked)) / 10) * 10
    created = _spread_after(rng, np.full(n_unlinked, org.start, dtype=np.int64), org.as_of - _DAY)
    close = created + rng.integers(15, 200, n_unlinked) * _DAY
    updated = _modified(rng, created, org.as_of)
    random_owner = _maybe_owner(rng, owners, n_unlinked, 0.1)
    deal_type = rng.integers(0, 2, n_unlinked)
    lc, lu = _hs_times(org.opp_created[linked]), _hs_times(_modified(rng, org.opp_created[linked], org.as_of))
    l_close = _dates(org.opp_close[linked])
    uc, uu, u_close = _hs_times(created), _hs_times(updated), _dates(close)

    # DEAL-6: contact roles of linked opportunities become deal-contact associations.
    role_start = np.searchsorted(org.role_opp, np.arange(n_opps + 1)) if len(org.role_opp) else None
    out: list[dict[str, Any]] = []
    for i in range(total):
        deal_id = str(40_000_000_001 + i)
        if i < n_linked:
            o = int(linked[i])
            org.opp_hs[o] = deal_id
            rt = int(org.opp_record_type[o])
            p = rt if len(org.pipeline_ids) > 1 and rt >= 0 else 0
            a = int(org.opp_account[o])
            props: dict[str, Any] = {
                "dealname": org.opp_names[o],
                "amount": str(int(org.opp_cents[o]) // 100),
                "closedate": l_close[i] + "T00:00:00.000Z",
                "dealstage": org.pipeline_stage_ids[p][int(org.opp_stage[o])],
                "pipeline": org.pipeline_ids[p],
                "dealtype": "newbusiness" if int(org.opp_type[o]) == 0 else "existingbusiness",
                "hubspot_owner_id": org.user_owner.get(int(org.opp_owner[o])),
                "salesforceopportunityid": org.opp_ids[o],
                "deal_currency_code": org.opp_currency[o],
            }
            rec = {"id": deal_id, "properties": props, "createdAt": lc[i], "updatedAt": max(lc[i], lu[i])}
            company = org.account_hs.get(a)  # DEAL-7: only when the account is linked
            if company is not None:
                org.associations.append(("deals", deal_id, "companies", company, ASSOC_DEAL_TO_COMPANY))
            if role_start is not None:
                for r in range(int(role_start[o]), int(role_start[o + 1])):
                    hs_contact = org.contact_hs.get(int(org.role_contact[r]))
                    if hs_contact is not None:
                        org.associations.append(
                            ("deals", deal_id, "contacts", hs_contact, ASSOC_DEAL_TO_CONTACT)
                        )
        else:
            u = i - n_linked
            comp = companies[int(comp_pick[u])] if companies else None
            if in_synced[u]:
                p = int(pipe[u])
                pipeline, deal_stage = org.pipeline_ids[p], org.pipeline_stage_ids[p][int(stage[u])]
            else:
                pipeline = "default"
                deal_stage = DEFAULT_PIPELINE["stages"][int(default_stage[u])]["id"]
            label = comp["properties"]["name"] if comp else "New deal"
            props = {
                "dealname": f"{label} - {_PRODUCTS[int(product[u])]}",
                "amount": str(int(dollars[u])),
                "closedate": u_close[u] + "T00:00:00.000Z",
                "dealstage": deal_stage,
                "pipeline": pipeline,
                "dealtype": ("newbusiness", "existingbusiness")[int(deal_type[u])],
                "hubspot_owner_id": random_owner[u],
                "deal_currency_code": "USD",
            }
            rec = {"id": deal_id, "properties": props, "createdAt": uc[u], "updatedAt": uu[u]}
            if comp is not None:
                org.associations.append(("deals", deal_id, "companies", comp["id"], ASSOC_DEAL_TO_COMPANY))
                contact = company_contacts.get(comp["id"])
                if contact is not None:
                    org.associations.append(("deals", deal_id, "contacts", contact, ASSOC_DEAL_TO_CONTACT))
        rec["properties"] = {k: v for k, v in props.items() if v is not None}
        out.append(rec)
    return out


# ------------------------------------------------------------------------------------------------
# Streaming JSON output
# ------------------------------------------------------------------------------------------------

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_FLUSH_EVERY = 20_000


def _write_array(out: IO[str], indent: str, records: Iterable[Any]) -> int:
    """Write ``[ ... ]`` with one compact record per line; returns how many were written."""
    encode = _ENCODER.encode
    inner = indent + "  "
    buffer: list[str] = []
    count = 0
    out.write("[")
    for record in records:
        buffer.append(inner + encode(record))
        count += 1
        if len(buffer) >= _FLUSH_EVERY:
            out.write(("\n" if count == len(buffer) else ",\n") + ",\n".join(buffer))
            buffer.clear()
    if buffer:
        out.write(("\n" if count == len(buffer) else ",\n") + ",\n".join(buffer))
    out.write(f"\n{indent}]" if count else "]")
    return count


def _sf_audit(created: IntArray, modified: IntArray) -> Iterator[tuple[str, str]]:
    """(CreatedDate, LastModifiedDate) literals; SystemModstamp equals LastModifiedDate."""
    return zip(_sf_times(created), _sf_times(modified), strict=True)


def _sf_tail(
    rec: dict[str, Any], hubspot_id: str | None, created: str, modified: str, *, deleted: bool = False
) -> dict[str, Any]:
    """End a generated Salesforce record the way every object does, in this key order: the link
    to HubSpot (``HubSpot_Id__c``) if it is linked, ``IsDeleted`` if it is in the recycle bin
    (DEAL-4), then the audit timestamps (``SystemModstamp`` equals ``LastModifiedDate``).

    One place for it keeps the objects consistent and the file byte-identical per seed.
    """
    if hubspot_id is not None:
        rec["HubSpot_Id__c"] = hubspot_id
    if deleted:
        rec["IsDeleted"] = True  # visible to queryAll only
    rec.update({"CreatedDate": created, "LastModifiedDate": modified, "SystemModstamp": modified})
    return rec


def _users(org: _Org) -> Iterator[dict[str, Any]]:
    rng = _rng(org.cfg.seed, "users-audit")
    n = len(org.user_ids)
    created = org.start - 400 * _DAY + np.arange(n, dtype=np.int64) * 3600
    modified = np.minimum(created + rng.integers(0, 700, n) * _DAY, org.as_of)
    for i, (c, m) in enumerate(_sf_audit(created, modified)):
        yield {
            "Id": org.user_ids[i],
            "Username": org.user_email[i],
            "FirstName": org.user_first[i],
            "LastName": org.user_last[i],
            "Email": org.user_email[i],
            "IsActive": bool(org.user_active[i]),
            "CreatedDate": c,
            "LastModifiedDate": m,
            "SystemModstamp": m,
        }


def _record_types(org: _Org) -> Iterator[dict[str, Any]]:
    stamp = _sf_times(np.asarray([org.start - 500 * _DAY], dtype=np.int64))[0]
    for rid, name in zip(org.record_type_ids, org.record_type_names, strict=True):
        yield {
            "Id": rid,
            "Name": name,
            "DeveloperName": re.sub(r"\W+", "_", name).strip("_"),
            "SobjectType": "Opportunity",
            "IsActive": True,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
        }


def _stages(org: _Org) -> Iterator[dict[str, Any]]:
    ids = salesforce_ids(KEY_PREFIXES["OpportunityStage"], _id_start(org.cfg.seed, "OpportunityStage"), 10)
    for i, (label, probability, closed, won) in enumerate(OPPORTUNITY_STAGES):
        yield {
            "Id": ids[i],
            "ApiName": label,
            "MasterLabel": label,
            "SortOrder": i + 1,
            "DefaultProbability": probability,
            "IsClosed": closed,
            "IsWon": won,
            "IsActive": True,
        }


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    area = rng.integers(201, 990, n).tolist()
    line = rng.integers(0, 10_000_000, n).tolist()
    return [f"+1 {a} {x // 10000:03d}-{x % 10000:04d}" for a, x in zip(area, line, strict=True)]


def _accounts(org: _Org) -> Iterator[dict[str, Any]]:
    rng = _rng(org.cfg.seed, "accounts-fields")
    n = len(org.account_ids)
    modified = _modified(rng, org.account_created, org.as_of)
    phones = _phones(rng, n)
    industry = rng.integers(0, len(INDUSTRIES), n).tolist()
    kind = _weighted(rng, _ACCOUNT_TYPE_WEIGHTS, n).tolist()
    city = rng.integers(0, 100, n).tolist()
    employees = np.maximum(np.exp(rng.normal(4.5, 1.6, n)), 1).astype(np.int64).tolist()
    revenue_k = (np.exp(rng.normal(9.0, 1.8, n))).astype(np.int64).tolist()
    has_description = (rng.random(n) < 0.3).tolist()
    phrase = rng.integers(0, len(org.pools.phrases), n).tolist()
    country = org.account_country.tolist()
    owner = org.account_owner.tolist()
    for i, (c, m) in enumerate(_sf_audit(org.account_created, modified)):
        land = _COUNTRIES[country[i]]
        rec: dict[str, Any] = {"Id": org.account_ids[i], "Name": org.account_names[i]}
        if org.account_website[i] is not None:
            rec["Website"] = org.account_website[i]
        rec.update(
            {
                "Phone": phones[i],
                "Industry": INDUSTRIES[industry[i]],
                "Type": ACCOUNT_TYPES[kind[i]],
                "BillingCity": land[3][city[i] % len(land[3])],
                "BillingCountry": land[0],
                "NumberOfEmployees": employees[i],
                "AnnualRevenue": float(revenue_k[i] * 1000),
                "OwnerId": org.user_ids[owner[i]],
                "CurrencyIsoCode": org.account_currency[i],
            }
        )
        if has_description[i]:
            rec["Description"] = org.pools.phrases[phrase[i]]
        yield _sf_tail(rec, org.account_hs.get(i), c, m)


def _contacts(org: _Org) -> Iterator[dict[str, Any]]:
    rng = _rng(org.cfg.seed, "contacts-fields")
    n = len(org.contact_ids)
    modified = _modified(rng, org.contact_created, org.as_of)
    phones = _phones(rng, n)
    source = rng.integers(0, len(LEAD_SOURCES), n).tolist()
    account = org.contact_account.tolist()
    owner = org.contact_owner.tolist()
    title = org.contact_title.tolist()
    for i, (c, m) in enumerate(_sf_audit(org.contact_created, modified)):
        rec: dict[str, Any] = {
            "Id": org.contact_ids[i],
            "FirstName": org.contact_first[i],
            "LastName": org.contact_last[i],
            "Email": org.contact_email[i],
            "Phone": phones[i],
            "Title": org.pools.jobs[title[i]],
        }
        if account[i] >= 0:
            rec["AccountId"] = org.account_ids[account[i]]
        rec["OwnerId"] = org.user_ids[owner[i]]
        rec["LeadSource"] = LEAD_SOURCES[source[i]]
        yield _sf_tail(rec, org.contact_hs.get(i), c, m)


def _leads(org: _Org) -> Iterator[dict[str, Any]]:
    rng = _rng(org.cfg.seed, "leads-fields")
    n = len(org.lead_ids)
    modified = _modified(rng, org.lead_created, org.as_of)
    phones = _phones(rng, n)
    source = rng.integers(0, len(LEAD_SOURCES), n).tolist()
    status = org.lead_status.tolist()
    owner = org.lead_owner.tolist()
    title = org.lead_title.tolist()
    for i, (c, m) in enumerate(_sf_audit(org.lead_created, modified)):
        rec: dict[str, Any] = {
            "Id": org.lead_ids[i],
            "FirstName": org.lead_first[i],
            "LastName": org.lead_last[i],
            "Company": org.lead_company[i],
            "Email": org.lead_email[i],
            "Phone": phones[i],
            "Title": org.pools.jobs[title[i]],
            "Status": LEAD_STATUSES[status[i]],
            "LeadSource": LEAD_SOURCES[source[i]],
            "OwnerId": org.user_ids[owner[i]],
            "IsConverted": status[i] == 2,
        }
        yield _sf_tail(rec, org.lead_hs.get(i), c, m)


def _opportunities(org: _Org) -> Iterator[dict[str, Any]]:
    rng = _rng(org.cfg.seed, "opportunities-fields")
    n = len(org.opp_ids)
    modified = _modified(rng, org.opp_created, org.as_of)
    has_description = (rng.random(n) < 0.3).tolist()
    phrase = rng.integers(0, len(org.pools.phrases), n).tolist()
    close = _dates(org.opp_close)
    stage = org.opp_stage.tolist()
    amount = (org.opp_cents // 100).tolist()
    kind = org.opp_type.tolist()
    account = org.opp_account.tolist()
    owner = org.opp_owner.tolist()
    record_type = org.opp_record_type.tolist()
    deleted = org.opp_deleted.tolist()
    account_ids, user_ids, rt_ids = org.account_ids, org.user_ids, org.record_type_ids
    stage_names = [s[0] for s in OPPORTUNITY_STAGES]
    for i, (c, m) in enumerate(_sf_audit(org.opp_created, modified)):
        rec: dict[str, Any] = {
            "Id": org.opp_ids[i],
            "Name": org.opp_names[i],
            "StageName": stage_names[stage[i]],
            "CloseDate": close[i],
            "Amount": float(amount[i]),
            "Type": _OPP_TYPES[kind[i]],
            "AccountId": account_ids[account[i]],
            "OwnerId": user_ids[owner[i]],
            "CurrencyIsoCode": org.opp_currency[i],
        }
        if record_type[i] >= 0:
            rec["RecordTypeId"] = rt_ids[record_type[i]]
        if has_description[i]:
            rec["Description"] = org.pools.phrases[phrase[i]]
        yield _sf_tail(rec, org.opp_hs.get(i), c, m, deleted=deleted[i])


def _contact_roles(org: _Org) -> Iterator[dict[str, Any]]:
    n = len(org.role_opp)
    ids = salesforce_ids(
        KEY_PREFIXES["OpportunityContactRole"], _id_start(org.cfg.seed, "OpportunityContactRole"), n
    )
    created = org.opp_created[org.role_opp] + 3600 if n else np.zeros(0, dtype=np.int64)
    opp, contact = org.role_opp.tolist(), org.role_contact.tolist()
    primary, kind = org.role_primary.tolist(), org.role_kind.tolist()
    for i, c in enumerate(_sf_times(created.astype(np.int64))):
        yield {
            "Id": ids[i],
            "OpportunityId": org.opp_ids[opp[i]],
            "ContactId": org.contact_ids[contact[i]],
            "Role": _ROLES[kind[i]],
            "IsPrimary": primary[i],
            "CreatedDate": c,
            "LastModifiedDate": c,
            "SystemModstamp": c,
        }


def _pipelines(org: _Org) -> list[dict[str, Any]]:
    """HubSpot's default pipeline plus one ``Salesforce - <record type>`` pipeline each (DEAL-2)."""
    labels = (
        [f"Salesforce - {name}" for name in org.record_type_names]
        if len(org.record_type_names) >= 2
        else ["Salesforce - Standard pipeline"]
    )
    out = [DEFAULT_PIPELINE]
    for order, (pid, label, stage_ids) in enumerate(
        zip(org.pipeline_ids, labels, org.pipeline_stage_ids, strict=True), start=1
    ):
        stages = [
            {
                "id": sid,
                "label": name,
                "displayOrder": s,
                "metadata": {"probability": f"{prob / 100:.1f}", "isClosed": "true" if closed else "false"},
            }
            for s, (sid, (name, prob, closed, _won)) in enumerate(
                zip(stage_ids, OPPORTUNITY_STAGES, strict=True)
            )
        ]
        out.append({"id": pid, "label": label, "displayOrder": order, "stages": stages})
    return out


# ------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------


def generate(config: GeneratorConfig, out: IO[str]) -> dict[str, int]:
    """Stream the scenario for ``config`` to ``out``; returns the number of records per object."""
    cfg = config.resolved()
    pools = _build_pools(cfg.seed)
    org = _Org(cfg=cfg, start=_epoch(cfg.start), as_of=_epoch(cfg.as_of), pools=pools)
    names = _CompanyNames(pools.last_names)
    _plan_users(org)
    _plan_record_types(org)
    # Each list of company names has its own stream, so e.g. more HubSpot companies do not rename
    # the Accounts; HubSpot-only companies avoid the Accounts' names so only deliberate
    # duplicates and domain matches (ACC-3/ACC-6) relate the two sides.
    account_combos = _distinct_indices(_rng(cfg.seed, "account-names"), cfg.accounts, names.base)
    n_hs = cfg.hubspot_companies or 0
    candidates = _distinct_indices(_rng(cfg.seed, "hubspot-company-names"), n_hs + cfg.accounts, names.base)
    hs_combos = candidates[~np.isin(candidates, account_combos)][:n_hs]
    n_lead_companies = max(1, (cfg.leads or 0) // 3)
    space = max(names.base, 2 * n_lead_companies)
    lead_combos = _rng(cfg.seed, "lead-company-names").integers(0, space, n_lead_companies).astype(np.int64)
    _plan_accounts(org, names, account_combos)
    _plan_contacts(org)
    _plan_leads(org, names, lead_combos)
    _plan_opportunities(org)
    companies, hs_contacts, deals = _plan_hubspot(org, names, hs_combos)

    counts: dict[str, int] = {}
    out.write('{\n  "salesforce": {\n')
    sections: list[tuple[str, Iterable[Any]]] = [
        ("User", _users(org)),
        ("RecordType", _record_types(org)),
        ("OpportunityStage", _stages(org)),
        ("Account", _accounts(org)),
        ("Contact", _contacts(org)),
        ("Lead", _leads(org)),
        ("Opportunity", _opportunities(org)),
        ("OpportunityContactRole", _contact_roles(org)),
    ]
    for pos, (name, records) in enumerate(sections):
        out.write(f'    "{name}": ')
        counts[name] = _write_array(out, "    ", records)
        out.write(",\n" if pos < len(sections) - 1 else "\n")
    out.write('  },\n  "hubspot": {\n    "owners": ')
    counts["owners"] = _write_array(out, "    ", org.owners)
    out.write(',\n    "pipelines": {"deals": ')
    pipelines = _pipelines(org)
    counts["pipelines"] = _write_array(out, "    ", pipelines)
    out.write("},\n")
    for name, records in (("companies", companies), ("contacts", hs_contacts), ("deals", deals)):
        out.write(f'    "{name}": ')
        counts[name] = _write_array(out, "    ", records)
        out.write(",\n")
    out.write('    "associations": ')
    counts["associations"] = _write_array(
        out,
        "    ",
        (
            {"from": [f, fid], "to": [t, tid], "typeId": type_id}
            for f, fid, t, tid, type_id in org.associations
        ),
    )
    out.write("\n  }\n}\n")
    return counts


def generate_file(config: GeneratorConfig, path: Path) -> dict[str, int]:
    """Write the scenario to ``path`` atomically (a partial file never has the final name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
        counts = generate(config, out)
    tmp.replace(path)
    return counts


def generate_scenario(config: GeneratorConfig) -> dict[str, Any]:
    """The scenario as a dict (small scales: tests and examples)."""
    import io

    buffer = io.StringIO()
    generate(config, buffer)
    result: dict[str, Any] = json.loads(buffer.getvalue())
    return result


def config_summary(config: GeneratorConfig) -> dict[str, Any]:
    """The resolved options, for logs and benchmark metadata."""
    return asdict(config.resolved())
