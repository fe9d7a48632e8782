"""The emulated org's schema: SObjects, their fields, value types and describe output.

Values are stored in the shapes the REST API prints, so a query page is rendered without
conversion: datetimes as ``2026-01-31T10:00:00.000+0000`` (UTC, second precision like a real
org, which is why syncs need an overlap window and an ``Id`` tie-break), dates as
``2026-01-31``, numbers as ``int``/``float``. The fixed datetime format sorts as a string, which
is what lets the store keep cheap sorted indexes on ``SystemModstamp`` and friends.

Field set per object follows the crm-sync issue: standard fields the sync reads or writes, the
audit fields every object has, and the custom external id ``HubSpot_Id__c``. ``RecordTypeId``
exists on Account, Contact, Lead and Opportunity only when the scenario defines a record type for
that object, as in a real org (an org without record types has no such column, and querying it
fails, which DEAL-2's "single record type (or none)" case must cope with).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from crm_sandbox.salesforce.errors import RecordError
from crm_sandbox.salesforce.ids import MalformedIdError, normalize_id

# -- value formats ------------------------------------------------------------------------------

_DT_FMT = "%Y-%m-%dT%H:%M:%S.000+0000"
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def format_datetime(value: datetime) -> str:
    """A datetime as the REST API prints it (UTC, seconds, ``.000+0000``)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(_DT_FMT)


_UTC_TAILS = frozenset({"Z", "+0000", "+00:00", ".000+0000", ".000Z", ".000+00:00", ""})


def parse_datetime_text(text: str, *, trusted: bool = False) -> str:
    """Parse an ISO-8601 datetime (``Z``, ``+00:00``, ``+0000``, naive = UTC) to the stored form.

    With ``trusted`` (scenario loading) the common UTC shapes are recognised by their tail
    without a full parse: loading a million-record scenario parses three timestamps per record.

    Raises:
        ValueError: not a datetime.
    """
    if trusted and len(text) >= 19 and text[10] == "T" and text[19:] in _UTC_TAILS:
        return text[:19] + ".000+0000"
    parsed = datetime.fromisoformat(text)
    return format_datetime(parsed)


def parse_date_text(text: str) -> str:
    """Parse ``YYYY-MM-DD`` (or the date part of a datetime) to the stored form."""
    if _DATE_RE.match(text):
        date.fromisoformat(text)
        return text
    return datetime.fromisoformat(text).date().isoformat()


def datetime_from_stored(text: str) -> datetime:
    return datetime.strptime(text, _DT_FMT).replace(tzinfo=UTC)


def now_stored() -> str:
    return format_datetime(datetime.now(UTC))


def bulk_datetime(text: str) -> str:
    """A stored datetime as Bulk API CSV prints it (``2026-01-31T10:00:00.000Z``)."""
    return text[:23] + "Z"


# -- fields -------------------------------------------------------------------------------------

TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "combobox"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})


@dataclass(frozen=True)
class Field:
    """One field of an SObject, with what describe reports and what writes must respect."""

    name: str
    type: str
    label: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    required: bool = False
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    picklist: tuple[str, ...] = ()
    #: a restricted picklist rejects values outside its list (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST);
    #: an unrestricted one, like the standard picklists of a default org, stores any value
    restricted: bool = False
    #: picklist values come from records of this SObject (Opportunity.StageName <- OpportunityStage)
    picklist_source: str | None = None
    default: Any = None
    reference_to: str | None = None
    relationship_name: str | None = None
    calculated: bool = False
    custom: bool = False
    defaulted_on_create: bool = False
    precision: int = 0
    scale: int = 0

    @property
    def is_text(self) -> bool:
        return self.type in TEXT_TYPES


def _text(name: str, label: str, length: int, **kw: Any) -> Field:
    return Field(name, kw.pop("type", "string"), label, length=length, **kw)


def _ref(name: str, label: str, to: str, rel: str, **kw: Any) -> Field:
    return Field(name, "reference", label, length=18, reference_to=to, relationship_name=rel, **kw)


def _pick(name: str, label: str, values: Iterable[str], **kw: Any) -> Field:
    """A picklist; unrestricted unless ``restricted=True``.

    Standard picklists (Industry, Type, LeadSource, Rating, Status, Role, ...) are unrestricted in
    a default org: the API accepts a value outside the list and stores it ("When inserting an
    unrestricted picklist field that does not have a PicklistEntry, the system creates an
    'inactive' picklist value", Picklist Field Type in
    https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm). Only
    restricted picklists ("Restrict picklist to the values defined in the value set", custom
    fields; ``restrictedPicklist: true`` in describe) and system-defined lists such as currency
    codes, forecast categories and opportunity stages reject other values.
    """
    return Field(name, "picklist", label, length=255, picklist=tuple(values), **kw)


def _bool(name: str, label: str, default: bool, **kw: Any) -> Field:
    return Field(name, "boolean", label, nillable=False, default=default, defaulted_on_create=True, **kw)


CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "CNY", "INR", "SEK", "NZD", "BRL", "MXN")
INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government", "Healthcare",
    "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit",
    "Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
    "Utilities", "Other",
)  # fmt: skip
ACCOUNT_TYPES = (
    "Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
    "Installation Partner", "Technology Partner", "Other",
)  # fmt: skip
RATINGS = ("Hot", "Warm", "Cold")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
OPPORTUNITY_TYPES = (
    "Existing Customer - Upgrade", "Existing Customer - Replacement",
    "Existing Customer - Downgrade", "New Customer",
)  # fmt: skip
CONTACT_ROLES = (
    "Business User", "Decision Maker", "Economic Buyer", "Economic Decision Maker", "Evaluator",
    "Executive Sponsor", "Influencer", "Technical Buyer", "Other",
)  # fmt: skip
FORECAST_CATEGORIES = ("Omitted", "Pipeline", "Best Case", "Commit", "Closed")

#: Salesforce's standard stages, used when a scenario defines no OpportunityStage records.
DEFAULT_STAGES: tuple[dict[str, Any], ...] = tuple(
    {
        "ApiName": name,
        "MasterLabel": name,
        "SortOrder": i + 1,
        "DefaultProbability": prob,
        "IsClosed": closed,
        "IsWon": won,
        "IsActive": True,
        "ForecastCategoryName": forecast,
    }
    for i, (name, prob, closed, won, forecast) in enumerate(
        [
            ("Prospecting", 10.0, False, False, "Pipeline"),
            ("Qualification", 10.0, False, False, "Pipeline"),
            ("Needs Analysis", 20.0, False, False, "Pipeline"),
            ("Value Proposition", 50.0, False, False, "Pipeline"),
            ("Id. Decision Makers", 60.0, False, False, "Pipeline"),
            ("Perception Analysis", 70.0, False, False, "Pipeline"),
            ("Proposal/Price Quote", 75.0, False, False, "Pipeline"),
            ("Negotiation/Review", 90.0, False, False, "Pipeline"),
            ("Closed Won", 100.0, True, True, "Closed"),
            ("Closed Lost", 0.0, True, False, "Omitted"),
        ]
    )
)


def _audit_fields() -> list[Field]:
    return [
        Field("Id", "id", "Record ID", length=18, nillable=False, createable=False, updateable=False,
              id_lookup=True, defaulted_on_create=True),
        _bool("IsDeleted", "Deleted", False, createable=False, updateable=False),
        Field("CreatedDate", "datetime", "Created Date", nillable=False, createable=False,
              updateable=False, defaulted_on_create=True),
        _ref("CreatedById", "Created By ID", "User", "CreatedBy", nillable=False, createable=False,
             updateable=False, defaulted_on_create=True),
        Field("LastModifiedDate", "datetime", "Last Modified Date", nillable=False, createable=False,
              updateable=False, defaulted_on_create=True),
        _ref("LastModifiedById", "Last Modified By ID", "User", "LastModifiedBy", nillable=False,
             createable=False, updateable=False, defaulted_on_create=True),
        Field("SystemModstamp", "datetime", "System Modstamp", nillable=False, createable=False,
              updateable=False, defaulted_on_create=True),
    ]  # fmt: skip


def _owner() -> Field:
    return _ref("OwnerId", "Owner ID", "User", "Owner", nillable=False, defaulted_on_create=True)


def _hubspot_id() -> Field:
    return _text(
        "HubSpot_Id__c", "HubSpot Id", 255, external_id=True, unique=True, id_lookup=True, custom=True
    )


def _currency() -> Field:
    return _pick("CurrencyIsoCode", "Currency ISO Code", CURRENCIES, nillable=False, default="USD",
                 defaulted_on_create=True, restricted=True)  # fmt: skip


def _name(length: int = 121) -> Field:
    return _text("Name", "Full Name", length, createable=False, updateable=False, calculated=True)


@dataclass(frozen=True)
class ChildRelationship:
    name: str
    child: str
    field: str


@dataclass
class SObjectType:
    """One SObject: its fields in describe order and the lookups derived from them."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: dict[str, Field]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    child_relationships: list[ChildRelationship] = field(default_factory=list)
    by_lower: dict[str, Field] = field(init=False)
    relationships: dict[str, Field] = field(init=False)

    def __post_init__(self) -> None:
        self.by_lower = {name.lower(): f for name, f in self.fields.items()}
        self.relationships = {
            f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name
        }

    def field(self, name: str) -> Field | None:
        return self.by_lower.get(name.lower())

    def child_relationship(self, name: str) -> ChildRelationship | None:
        lower = name.lower()
        for rel in self.child_relationships:
            if rel.name.lower() == lower:
                return rel
        return None


def _object(name: str, label: str, plural: str, prefix: str, fields: list[Field], **kw: Any) -> SObjectType:
    return SObjectType(name, label, plural, prefix, {f.name: f for f in fields}, **kw)


RECORD_TYPE_OBJECTS = ("Account", "Contact", "Lead", "Opportunity")


#: Objects that carry the custom External ID field ``HubSpot_Id__c`` (created by an admin for crm-sync).
HUBSPOT_ID_OBJECTS = ("Account", "Contact", "Lead", "Opportunity")


def build_schema(
    record_type_objects: Iterable[str] = (), hubspot_id_objects: Iterable[str] = HUBSPOT_ID_OBJECTS
) -> dict[str, SObjectType]:
    """All emulated SObjects; objects named in ``record_type_objects`` get ``RecordTypeId``.

    ``HubSpot_Id__c`` is a custom field an admin creates; ``hubspot_id_objects`` names the objects
    that have it (all four by default), so the sandbox can also be an org where it is missing.
    """
    with_types = set(record_type_objects)
    with_external_id = set(hubspot_id_objects)
    audit = _audit_fields
    user = _object("User", "User", "Users", "005", [
        audit()[0],
        _text("Username", "Username", 80, nillable=False, required=True, unique=True, id_lookup=True),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False, required=True),
        _name(121),
        _text("Email", "Email", 128, type="email", nillable=False, required=True),
        _text("Alias", "Alias", 8),
        _text("Title", "Title", 80),
        _bool("IsActive", "Active", True),
        *audit()[1:],
    ], deletable=False)  # fmt: skip
    record_type = _object("RecordType", "Record Type", "Record Types", "012", [
        audit()[0],
        _text("Name", "Record Type Name", 80, nillable=False),
        _text("DeveloperName", "Record Type Name", 80, nillable=False),
        _text("SobjectType", "SObject Type Name", 40, nillable=False),
        _text("Description", "Description", 255),
        _bool("IsActive", "Active", True),
        *audit()[1:],
    ], createable=False, updateable=False, deletable=False)  # fmt: skip
    stage = _object("OpportunityStage", "Opportunity Stage", "Opportunity Stages", "01J", [
        audit()[0],
        _text("ApiName", "Api Name", 255, nillable=False),
        _text("MasterLabel", "Master Label", 255, nillable=False),
        Field("SortOrder", "int", "Sort Order", precision=9),
        Field("DefaultProbability", "percent", "Probability (%)", precision=3, scale=0),
        _bool("IsClosed", "Closed", False),
        _bool("IsWon", "Won", False),
        _bool("IsActive", "Active", True),
        _pick("ForecastCategoryName", "Forecast Category", FORECAST_CATEGORIES, restricted=True),
        _text("Description", "Description", 255),
        *audit()[1:],
    ], createable=False, updateable=False, deletable=False)  # fmt: skip
    assignment_rule = _object("AssignmentRule", "Assignment Rule", "Assignment Rules", "01Q", [
        audit()[0],
        _text("Name", "Name", 120, nillable=False),
        _text("SobjectType", "SObject Type", 40, nillable=False),
        _bool("Active", "Active", False),
        *audit()[1:],
    ], createable=False, updateable=False, deletable=False)  # fmt: skip
    account = _object("Account", "Account", "Accounts", "001", [
        audit()[0],
        _text("Name", "Account Name", 255, nillable=False, required=True),
        _text("Website", "Website", 255, type="url"),
        _text("Phone", "Account Phone", 40, type="phone"),
        _pick("Industry", "Industry", INDUSTRIES),
        _pick("Type", "Account Type", ACCOUNT_TYPES),
        _pick("Rating", "Account Rating", RATINGS),
        _text("BillingCity", "Billing City", 40),
        _text("BillingCountry", "Billing Country", 80),
        Field("BillingAddress", "address", "Billing Address", createable=False, updateable=False),
        Field("NumberOfEmployees", "int", "Employees", precision=8),
        Field("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        _text("Description", "Account Description", 32000, type="textarea"),
        _owner(),
        _currency(),
        _hubspot_id(),
        *audit()[1:],
    ], child_relationships=[
        ChildRelationship("Contacts", "Contact", "AccountId"),
        ChildRelationship("Opportunities", "Opportunity", "AccountId"),
    ])  # fmt: skip
    contact = _object("Contact", "Contact", "Contacts", "003", [
        audit()[0],
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False, required=True),
        _name(121),
        _text("Email", "Email", 80, type="email"),
        _text("Phone", "Business Phone", 40, type="phone"),
        _text("Title", "Title", 128),
        _ref("AccountId", "Account ID", "Account", "Account"),
        _owner(),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        _hubspot_id(),
        *audit()[1:],
    ], child_relationships=[ChildRelationship("OpportunityContactRoles", "OpportunityContactRole",
                                              "ContactId")])  # fmt: skip
    lead = _object("Lead", "Lead", "Leads", "00Q", [
        audit()[0],
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False, required=True),
        _name(121),
        _text("Company", "Company", 255, nillable=False, required=True),
        _text("Email", "Email", 80, type="email"),
        _text("Phone", "Phone", 40, type="phone"),
        _text("Title", "Title", 128),
        _pick("Status", "Lead Status", LEAD_STATUSES, nillable=False, default=LEAD_STATUSES[0],
              defaulted_on_create=True),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        _pick("Rating", "Rating", RATINGS),
        _owner(),
        _bool("IsConverted", "Converted", False, createable=False, updateable=False),
        Field("ConvertedDate", "date", "Converted Date", createable=False, updateable=False),
        _ref("ConvertedAccountId", "Converted Account ID", "Account", "ConvertedAccount",
             createable=False, updateable=False),
        _ref("ConvertedContactId", "Converted Contact ID", "Contact", "ConvertedContact",
             createable=False, updateable=False),
        _ref("ConvertedOpportunityId", "Converted Opportunity ID", "Opportunity", "ConvertedOpportunity",
             createable=False, updateable=False),
        _hubspot_id(),
        *audit()[1:],
    ])  # fmt: skip
    opportunity_fields = [
        audit()[0],
        _text("Name", "Name", 120, nillable=False, required=True),
        _ref("AccountId", "Account ID", "Account", "Account"),
        _text("Description", "Description", 32000, type="textarea"),
        Field("StageName", "picklist", "Stage", length=255, nillable=False, required=True,
              picklist_source="OpportunityStage", restricted=True),
        Field("Amount", "currency", "Amount", precision=18, scale=2),
        Field("Probability", "percent", "Probability (%)", precision=3, scale=0, defaulted_on_create=True),
        Field("CloseDate", "date", "Close Date", nillable=False, required=True),
        _pick("Type", "Opportunity Type", OPPORTUNITY_TYPES),
        _bool("IsClosed", "Closed", False, createable=False, updateable=False, calculated=True),
        _bool("IsWon", "Won", False, createable=False, updateable=False, calculated=True),
        _pick("ForecastCategoryName", "Forecast Category", FORECAST_CATEGORIES, defaulted_on_create=True,
              restricted=True),
        _currency(),
        _owner(),
        _hubspot_id(),
        *audit()[1:],
    ]  # fmt: skip
    opportunity = _object("Opportunity", "Opportunity", "Opportunities", "006", opportunity_fields,
                          child_relationships=[
                              ChildRelationship("OpportunityContactRoles", "OpportunityContactRole",
                                                "OpportunityId"),
                          ])  # fmt: skip
    ocr = _object("OpportunityContactRole", "Opportunity Contact Role", "Opportunity Contact Roles", "00K", [
        audit()[0],
        _ref("OpportunityId", "Opportunity ID", "Opportunity", "Opportunity", nillable=False, required=True,
             updateable=False),
        _ref("ContactId", "Contact ID", "Contact", "Contact", nillable=False, required=True),
        _pick("Role", "Role", CONTACT_ROLES),
        _bool("IsPrimary", "Primary", False),
        *audit()[1:],
    ])  # fmt: skip
    objects = [user, record_type, stage, assignment_rule, account, contact, lead, opportunity, ocr]
    for obj in objects:
        if obj.name in with_types and obj.name in RECORD_TYPE_OBJECTS:
            _add_record_type_field(obj)
        if obj.name not in with_external_id and "HubSpot_Id__c" in obj.fields:
            del obj.fields["HubSpot_Id__c"]
            obj.__post_init__()
    return {o.name: o for o in objects}


def _add_record_type_field(obj: SObjectType) -> None:
    """Insert ``RecordTypeId`` after the name field, where describe lists it in a real org."""
    rt_field = _ref("RecordTypeId", "Record Type ID", "RecordType", "RecordType", defaulted_on_create=True)
    items = list(obj.fields.items())
    position = next((i + 1 for i, (name, _) in enumerate(items) if name in ("Name", "LastName")), 1)
    items.insert(position, (rt_field.name, rt_field))
    obj.fields = dict(items)
    obj.__post_init__()


def object_for_prefix(schema: Mapping[str, SObjectType], record_id: str) -> SObjectType | None:
    prefix = record_id[:3]
    for obj in schema.values():
        if obj.key_prefix == prefix:
            return obj
    return None


# -- coercion of written values -----------------------------------------------------------------


def coerce_value(f: Field, raw: Any, *, from_csv: bool = False) -> Any:
    """Convert a JSON (or Bulk CSV) value to the stored form of field ``f``.

    Raises:
        RecordError: the value has the wrong type or shape for the field.
    """
    if raw is None:
        return None
    kind = f.type
    if kind in TEXT_TYPES:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise _json_error(f, raw)
        text = raw if isinstance(raw, str) else str(raw)
        if text == "":
            return None
        if f.length and len(text) > f.length:
            raise RecordError(
                "STRING_TOO_LONG",
                f"{f.label}: data value too large: {text[:40]} (max length={f.length})",
                [f.name],
            )
        if kind == "email" and not _EMAIL_RE.match(text):
            raise RecordError("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", [f.name])
        return text
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if from_csv and isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0"):
            return raw.lower() in ("true", "1")
        raise _json_error(f, raw)
    if kind in NUMBER_TYPES:
        return _coerce_number(f, raw)
    if kind in ("date", "datetime"):
        if not isinstance(raw, str):
            raise _json_error(f, raw)
        try:
            return parse_date_text(raw) if kind == "date" else parse_datetime_text(raw)
        except ValueError:
            raise _json_error(f, raw) from None
    if kind in ("reference", "id"):
        if not isinstance(raw, str):
            raise _json_error(f, raw)
        if raw == "":
            return None
        try:
            return normalize_id(raw)
        except MalformedIdError:
            raise RecordError(
                "MALFORMED_ID", f"{f.label}: id value of incorrect type: {raw}", [f.name]
            ) from None
    raise _json_error(f, raw)


def _coerce_number(f: Field, raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise _json_error(f, raw)
    value: float
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            raise _json_error(f, raw) from None
    else:
        raise _json_error(f, raw)
    if f.type == "int":
        if not value.is_integer():
            raise _json_error(f, raw)
        return int(value)
    return value


def _json_error(f: Field, raw: Any) -> RecordError:
    kind = {"int": "int", "double": "double", "currency": "currency", "percent": "percent"}.get(
        f.type, f.type
    )
    return RecordError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {type(raw).__name__.upper()} value {raw} "
        f"or request may be missing a required field",
        [f.name],
    )


# -- describe -----------------------------------------------------------------------------------

_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "textarea": "xsd:string",
    "email": "xsd:string", "phone": "xsd:string", "url": "xsd:string", "picklist": "xsd:string",
    "boolean": "xsd:boolean", "date": "xsd:date", "datetime": "xsd:dateTime", "int": "xsd:int",
    "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double", "address": "urn:address",
}  # fmt: skip

#: Compound fields (SOAP API Developer Guide, "Compound Fields"): the compound of each component,
#: which describe reports as ``compoundFieldName``. An address is read as one value in REST
#: queries; it can't be written, filtered, sorted or grouped, nor queried through the Bulk API.
COMPOUND_COMPONENTS: dict[tuple[str, str], str] = {
    ("Account", "BillingCity"): "BillingAddress",
    ("Account", "BillingCountry"): "BillingAddress",
    **{(obj, part): "Name" for obj in ("User", "Contact", "Lead") for part in ("FirstName", "LastName")},
}
#: Address compound -> (component field, key in the compound value) pairs.
ADDRESS_PARTS: dict[str, tuple[tuple[str | None, str], ...]] = {
    "BillingAddress": (
        ("BillingCity", "city"), ("BillingCountry", "country"), (None, "geocodeAccuracy"), (None, "latitude"),
        (None, "longitude"), (None, "postalCode"), (None, "state"), (None, "street"),
    ),
}  # fmt: skip


def address_value(rec: Mapping[str, Any], compound: str) -> dict[str, Any] | None:
    """An address compound's value: null while every component is null."""
    parts = ADDRESS_PARTS[compound]
    value = {key: (rec.get(name) if name else None) for name, key in parts}
    return value if any(v is not None for v in value.values()) else None


def describe_field(
    f: Field, picklist_values: list[str], default_value: Any, compound: str | None = None
) -> dict[str, Any]:
    """One entry of ``fields`` in an SObject describe (``compound``: its compound field's name)."""
    is_picklist = f.type == "picklist"
    return {
        "name": f.name,
        "label": f.label,
        "type": f.type,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "length": f.length if f.is_text or f.type in ("id", "reference") else 0,
        "byteLength": f.length * 3 if f.is_text or f.type in ("id", "reference") else 0,
        "precision": f.precision,
        "scale": f.scale,
        "digits": f.precision if f.type == "int" else 0,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "defaultedOnCreate": f.defaulted_on_create,
        "calculated": f.calculated,
        "custom": f.custom,
        "externalId": f.external_id,
        "unique": f.unique,
        "idLookup": f.id_lookup,
        "caseSensitive": False,
        "filterable": f.type != "address" and (f.type != "textarea" or f.length <= 255),
        "sortable": f.type not in ("textarea", "address"),
        "groupable": f.type not in ("textarea", "double", "currency", "percent", "datetime", "address"),
        "nameField": f.name == "Name",
        "restrictedPicklist": is_picklist and f.restricted,
        "picklistValues": [
            {"value": v, "label": v, "active": True, "defaultValue": v == default_value, "validFor": None}
            for v in picklist_values
        ]
        if is_picklist
        else [],
        "defaultValue": default_value if f.type in ("boolean", "picklist") else None,
        "referenceTo": [f.reference_to] if f.reference_to else [],
        "relationshipName": f.relationship_name,
        "relationshipOrder": None,
        "cascadeDelete": False,
        "polymorphicForeignKey": False,
        "autoNumber": False,
        "htmlFormatted": False,
        "inlineHelpText": None,
        # The rest of a real describe's keys, so connectors that index them directly find them.
        "aggregatable": f.type not in ("boolean", "address")
        and not (f.type == "textarea" and f.length > 255),
        "aiPredictionField": False,
        "calculatedFormula": None,
        "compoundFieldName": compound,
        "controllerName": None,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "extraTypeInfo": None,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "highScaleNumber": False,
        "mask": None,
        "maskType": None,
        "namePointing": False,
        "permissionable": f.custom or (f.nillable and f.updateable and not f.calculated),
        "queryByDistance": False,
        "referenceTargetField": None,
        "searchPrefilterable": f.type == "reference",
        "writeRequiresMasterRead": False,
    }


def object_urls(version: str, name: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{name}"
    return {
        "sobject": base,
        "describe": f"{base}/describe",
        "rowTemplate": f"{base}/{{ID}}",
    }


def describe_global_entry(obj: SObjectType, version: str) -> dict[str, Any]:
    """One entry of ``sobjects`` in the global describe."""
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": False,
        "customSetting": False,
        "activateable": False,
        "createable": obj.createable,
        "updateable": obj.updateable,
        "deletable": obj.deletable,
        "undeletable": obj.deletable,
        "queryable": True,
        "retrieveable": True,
        "searchable": obj.name not in ("RecordType", "OpportunityStage", "AssignmentRule"),
        "replicateable": True,
        "triggerable": obj.createable,
        "layoutable": obj.createable,
        "mergeable": obj.name in ("Account", "Contact", "Lead"),
        "feedEnabled": False,
        "urls": object_urls(version, obj.name),
    }
