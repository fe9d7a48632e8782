"""Property definitions per object type, and how HubSpot validates and normalizes written values.

A real portal rejects writes to properties that do not exist (``PROPERTY_DOESNT_EXIST``), values
outside an enumeration's options (``INVALID_OPTION``), malformed numbers and dates, and writes to
read-only properties; it returns every value as a string (datetimes as ISO 8601 with
milliseconds). The emulator predefines the HubSpot default properties a Salesforce integration
touches, plus the custom ones crm-sync relies on, and applies the same checks, so a sync that
writes a bad value fails here as it would in production.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_sandbox.hubspot.errors import HubSpotError, PropertyProblem, validation_error
from crm_sandbox.hubspot.kinds import KINDS, iso_date, iso_ms, parse_ms

TYPES = {"string", "number", "date", "datetime", "enumeration", "bool", "phone_number"}
FIELD_TYPES = {
    "text",
    "textarea",
    "number",
    "date",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "calculation_equation",
    "phonenumber",
    "html",
    "file",
}
#: Types whose values order numerically or chronologically (range filters, range indexes).
ORDERED_TYPES = {"number", "date", "datetime"}

_CANONICAL_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")

#: Fixed instant used as the creation time of HubSpot's predefined properties.
_DEFINED_AT = "2019-08-06T02:41:08.029Z"


@dataclass
class Option:
    """One enumeration option."""

    label: str
    value: str
    display_order: int = -1
    hidden: bool = False
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
            "description": self.description,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], index: int) -> Option:
        if not isinstance(raw, Mapping) or "value" not in raw or "label" not in raw:
            raise validation_error("Each option needs a label and a value.")
        return cls(
            label=str(raw["label"]),
            value=str(raw["value"]),
            display_order=int(raw.get("displayOrder", index)),
            hidden=bool(raw.get("hidden", False)),
            description=str(raw.get("description") or ""),
        )


@dataclass
class PropertyDef:
    """A property definition, rendered as HubSpot's ``Property`` model."""

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    description: str = ""
    options: list[Option] = field(default_factory=list)
    has_unique_value: bool = False
    hidden: bool = False
    display_order: int = -1
    hubspot_defined: bool = True
    read_only_value: bool = False
    calculated: bool = False
    #: Options come from other data (owners, pipelines, stages) and are checked by the store.
    dynamic_options: bool = False
    form_field: bool = True
    created_at: str = _DEFINED_AT
    updated_at: str = _DEFINED_AT
    archived: bool = False
    archived_at: str | None = None
    _option_cache: tuple[list[Option], frozenset[str]] | None = field(default=None, repr=False, compare=False)

    def to_json(self, options: list[Option] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "updatedAt": self.updated_at,
            "createdAt": self.created_at,
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [o.to_json() for o in (self.options if options is None else options)],
            "displayOrder": self.display_order,
            "calculated": self.calculated,
            "externalOptions": self.dynamic_options,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only_value,
            },
            "formField": self.form_field,
            "archived": self.archived,
        }
        if self.hubspot_defined:
            out["hubspotDefined"] = True
        if self.archived_at:
            out["archivedAt"] = self.archived_at
        return out

    @property
    def ordered(self) -> bool:
        return self.type in ORDERED_TYPES

    def normalize(self, raw: Any) -> str | None:
        """The stored string for a written value, ``None`` to clear it; raises ``PropertyProblem``.

        Mirrors HubSpot: every value is stored and returned as a string, an empty value clears
        the property, booleans become ``true``/``false``, datetimes ISO with milliseconds.
        """
        if raw is None:
            return None
        if isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, int):
            text = str(raw)
        elif isinstance(raw, float):
            text = str(int(raw)) if raw.is_integer() else repr(raw)
        elif isinstance(raw, str):
            text = raw
        else:
            raise PropertyProblem(self.name, "INVALID_STRING", f"{raw!r} is not a valid value")
        if text == "":
            return None
        kind = self.type
        if kind in ("string", "phone_number"):
            if len(text) > 65536:
                raise PropertyProblem(
                    self.name, "STRING_TOO_LONG", f"{self.name} is longer than 65536 characters"
                )
            return text
        if kind == "number":
            try:
                number = float(text)
            except ValueError:
                raise PropertyProblem(self.name, "INVALID_LONG", f"{text} was not a valid number.") from None
            if not math.isfinite(number):
                raise PropertyProblem(self.name, "INVALID_LONG", f"{text} was not a valid number.")
            return text.strip()
        if kind == "datetime":
            if _CANONICAL_DATETIME.match(text):
                return text
            try:
                return iso_ms(parse_ms(text))
            except (ValueError, OverflowError, OSError):
                raise PropertyProblem(self.name, "INVALID_DATE", f"{text} is not a valid datetime.") from None
        if kind == "date":
            try:
                ms = parse_ms(text)
            except (ValueError, OverflowError, OSError):
                raise PropertyProblem(self.name, "INVALID_DATE", f"{text} is not a valid date.") from None
            if ms % 86_400_000:
                raise PropertyProblem(
                    self.name,
                    "INVALID_DATE",
                    f"{text} is at a time other than midnight UTC; date values must be midnight UTC.",
                )
            return iso_date(ms)
        if kind == "bool":
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise PropertyProblem(self.name, "INVALID_OPTION", _not_allowed(text, self._allowed()))
            return lowered
        if kind == "enumeration":
            if self.dynamic_options:
                return text
            allowed = self.option_values()
            parts = text.split(";") if self.field_type == "checkbox" else [text]
            for part in parts:
                if part not in allowed:
                    raise PropertyProblem(self.name, "INVALID_OPTION", _not_allowed(part, self._allowed()))
            return text
        return text

    def option_values(self) -> frozenset[str]:
        """The allowed enumeration values, cached until the options change."""
        cached = self._option_cache
        if cached is None or cached[0] is not self.options:
            cached = (self.options, frozenset(o.value for o in self.options))
            self._option_cache = cached
        return cached[1]

    def _allowed(self) -> list[Option]:
        if self.type == "bool" and not self.options:
            return [Option("Yes", "true"), Option("No", "false")]
        return self.options


def _not_allowed(value: str, options: Iterable[Option]) -> str:
    listed = ", ".join(o.label for o in options)
    return f"{value} was not one of the allowed options: [{listed}]"


def invalid_option(name: str, value: str, options: Iterable[Option]) -> PropertyProblem:
    """An ``INVALID_OPTION`` problem for a dynamically checked enumeration (owner, pipeline, stage)."""
    return PropertyProblem(name, "INVALID_OPTION", _not_allowed(value, options))


# -- HubSpot's predefined properties -----------------------------------------------------------

LIFECYCLE_STAGES = [
    ("Subscriber", "subscriber"),
    ("Lead", "lead"),
    ("Marketing Qualified Lead", "marketingqualifiedlead"),
    ("Sales Qualified Lead", "salesqualifiedlead"),
    ("Opportunity", "opportunity"),
    ("Customer", "customer"),
    ("Evangelist", "evangelist"),
    ("Other", "other"),
]
LEAD_STATUSES = [
    ("New", "NEW"),
    ("Open", "OPEN"),
    ("In Progress", "IN_PROGRESS"),
    ("Open Deal", "OPEN_DEAL"),
    ("Unqualified", "UNQUALIFIED"),
    ("Attempted to Contact", "ATTEMPTED_TO_CONTACT"),
    ("Connected", "CONNECTED"),
    ("Bad Timing", "BAD_TIMING"),
]
COMPANY_TYPES = [
    ("Prospect", "PROSPECT"),
    ("Partner", "PARTNER"),
    ("Reseller", "RESELLER"),
    ("Vendor", "VENDOR"),
    ("Other", "OTHER"),
]
DEAL_TYPES = [("New Business", "newbusiness"), ("Existing Business", "existingbusiness")]
CURRENCIES = [
    "USD", "EUR", "GBP", "CAD", "AUD", "NZD", "JPY", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK",
    "INR", "SGD", "HKD", "CNY", "BRL", "MXN", "ZAR", "AED", "ILS", "KRW", "TRY",
]  # fmt: skip
#: The values of HubSpot's ``industry`` company property (an enumeration, not free text).
INDUSTRIES = [
    "ACCOUNTING", "AIRLINES_AVIATION", "ALTERNATIVE_DISPUTE_RESOLUTION", "ALTERNATIVE_MEDICINE",
    "ANIMATION", "APPAREL_FASHION", "ARCHITECTURE_PLANNING", "ARTS_AND_CRAFTS", "AUTOMOTIVE",
    "AVIATION_AEROSPACE", "BANKING", "BIOTECHNOLOGY", "BROADCAST_MEDIA", "BUILDING_MATERIALS",
    "BUSINESS_SUPPLIES_AND_EQUIPMENT", "CAPITAL_MARKETS", "CHEMICALS", "CIVIC_SOCIAL_ORGANIZATION",
    "CIVIL_ENGINEERING", "COMMERCIAL_REAL_ESTATE", "COMPUTER_NETWORK_SECURITY", "COMPUTER_GAMES",
    "COMPUTER_HARDWARE", "COMPUTER_NETWORKING", "COMPUTER_SOFTWARE", "INTERNET", "CONSTRUCTION",
    "CONSUMER_ELECTRONICS", "CONSUMER_GOODS", "CONSUMER_SERVICES", "COSMETICS", "DAIRY",
    "DEFENSE_SPACE", "DESIGN", "EDUCATION_MANAGEMENT", "E_LEARNING",
    "ELECTRICAL_ELECTRONIC_MANUFACTURING", "ENTERTAINMENT", "ENVIRONMENTAL_SERVICES", "EVENTS_SERVICES",
    "EXECUTIVE_OFFICE", "FACILITIES_SERVICES", "FARMING", "FINANCIAL_SERVICES", "FINE_ART", "FISHERY",
    "FOOD_BEVERAGES", "FOOD_PRODUCTION", "FUND_RAISING", "FURNITURE", "GAMBLING_CASINOS",
    "GLASS_CERAMICS_CONCRETE", "GOVERNMENT_ADMINISTRATION", "GOVERNMENT_RELATIONS", "GRAPHIC_DESIGN",
    "HEALTH_WELLNESS_AND_FITNESS", "HIGHER_EDUCATION", "HOSPITAL_HEALTH_CARE", "HOSPITALITY",
    "HUMAN_RESOURCES", "IMPORT_AND_EXPORT", "INDIVIDUAL_FAMILY_SERVICES", "INDUSTRIAL_AUTOMATION",
    "INFORMATION_SERVICES", "INFORMATION_TECHNOLOGY_AND_SERVICES", "INSURANCE", "INTERNATIONAL_AFFAIRS",
    "INTERNATIONAL_TRADE_AND_DEVELOPMENT", "INVESTMENT_BANKING", "INVESTMENT_MANAGEMENT", "JUDICIARY",
    "LAW_ENFORCEMENT", "LAW_PRACTICE", "LEGAL_SERVICES", "LEGISLATIVE_OFFICE", "LEISURE_TRAVEL_TOURISM",
    "LIBRARIES", "LOGISTICS_AND_SUPPLY_CHAIN", "LUXURY_GOODS_JEWELRY", "MACHINERY",
    "MANAGEMENT_CONSULTING", "MARITIME", "MARKET_RESEARCH", "MARKETING_AND_ADVERTISING",
    "MECHANICAL_OR_INDUSTRIAL_ENGINEERING", "MEDIA_PRODUCTION", "MEDICAL_DEVICES", "MEDICAL_PRACTICE",
    "MENTAL_HEALTH_CARE", "MILITARY", "MINING_METALS", "MOTION_PICTURES_AND_FILM",
    "MUSEUMS_AND_INSTITUTIONS", "MUSIC", "NANOTECHNOLOGY", "NEWSPAPERS",
    "NON_PROFIT_ORGANIZATION_MANAGEMENT", "OIL_ENERGY", "ONLINE_MEDIA", "OUTSOURCING_OFFSHORING",
    "PACKAGE_FREIGHT_DELIVERY", "PACKAGING_AND_CONTAINERS", "PAPER_FOREST_PRODUCTS", "PERFORMING_ARTS",
    "PHARMACEUTICALS", "PHILANTHROPY", "PHOTOGRAPHY", "PLASTICS", "POLITICAL_ORGANIZATION",
    "PRIMARY_SECONDARY_EDUCATION", "PRINTING", "PROFESSIONAL_TRAINING_COACHING", "PROGRAM_DEVELOPMENT",
    "PUBLIC_POLICY", "PUBLIC_RELATIONS_AND_COMMUNICATIONS", "PUBLIC_SAFETY", "PUBLISHING",
    "RAILROAD_MANUFACTURE", "RANCHING", "REAL_ESTATE", "RECREATIONAL_FACILITIES_AND_SERVICES",
    "RELIGIOUS_INSTITUTIONS", "RENEWABLES_ENVIRONMENT", "RESEARCH", "RESTAURANTS", "RETAIL",
    "SECURITY_AND_INVESTIGATIONS", "SEMICONDUCTORS", "SHIPBUILDING", "SPORTING_GOODS", "SPORTS",
    "STAFFING_AND_RECRUITING", "SUPERMARKETS", "TELECOMMUNICATIONS", "TEXTILES", "THINK_TANKS",
    "TOBACCO", "TRANSLATION_AND_LOCALIZATION", "TRANSPORTATION_TRUCKING_RAILROAD", "UTILITIES",
    "VENTURE_CAPITAL_PRIVATE_EQUITY", "VETERINARY", "WAREHOUSING", "WHOLESALE", "WINE_AND_SPIRITS",
    "WIRELESS", "WRITING_AND_EDITING", "MOBILE_GAMES",
]  # fmt: skip


def _opts(pairs: Iterable[tuple[str, str]]) -> list[Option]:
    return [Option(label, value, i) for i, (label, value) in enumerate(pairs)]


# (name, label, type, fieldType, extras)
_Spec = tuple[str, str, str, str, dict[str, Any]]

_ROLLUP: dict[str, Any] = {"read_only_value": True, "calculated": True}
_SHARED_ROLLUPS: list[_Spec] = [
    # Calculated by HubSpot from the associated deals (crm_sandbox.hubspot.rollups cites how), so
    # read-only: a write is refused with READ_ONLY_VALUE, and crm-sync can only predict them.
    ("num_associated_deals", "Number of Associated Deals", "number", "number", _ROLLUP),
    ("first_deal_created_date", "First Deal Created Date", "datetime", "date", _ROLLUP),
    ("recent_deal_close_date", "Recent Deal Close Date", "datetime", "date", _ROLLUP),
    ("recent_deal_amount", "Recent Deal Amount", "number", "number", _ROLLUP),
    ("total_revenue", "Total Revenue", "number", "number", _ROLLUP),
]

_COMMON: list[_Spec] = [
    ("hs_object_id", "Record ID", "number", "number", {"read_only_value": True}),
    ("createdate", "Create Date", "datetime", "date", {}),
    ("hubspot_owner_id", "Owner", "enumeration", "select", {"dynamic_options": True}),
    ("hs_object_source", "Record source", "string", "text", {"read_only_value": True}),
]

_CONTACT_SPECS: list[_Spec] = [
    *_COMMON,
    ("lastmodifieddate", "Last Modified Date", "datetime", "date", {"read_only_value": True}),
    ("email", "Email", "string", "text", {}),
    ("firstname", "First Name", "string", "text", {}),
    ("lastname", "Last Name", "string", "text", {}),
    ("phone", "Phone Number", "string", "phonenumber", {}),
    ("mobilephone", "Mobile Phone Number", "string", "phonenumber", {}),
    ("company", "Company Name", "string", "text", {}),
    ("jobtitle", "Job Title", "string", "text", {}),
    ("website", "Website URL", "string", "text", {}),
    ("address", "Street Address", "string", "text", {}),
    ("city", "City", "string", "text", {}),
    ("state", "State/Region", "string", "text", {}),
    ("zip", "Postal Code", "string", "text", {}),
    ("country", "Country/Region", "string", "text", {}),
    ("hs_additional_emails", "Additional email addresses", "string", "textarea", {}),
    ("hs_email_domain", "Email Domain", "string", "text", {"read_only_value": True}),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", {"options": _opts(LIFECYCLE_STAGES)}),
    ("hs_lead_status", "Lead Status", "enumeration", "radio", {"options": _opts(LEAD_STATUSES)}),
    ("associatedcompanyid", "Primary Associated Company ID", "number", "number", {"read_only_value": True}),
    ("salesforcecontactid", "Salesforce Contact ID", "string", "text", {}),
    ("salesforceleadid", "Salesforce Lead ID", "string", "text", {}),
    ("salesforceaccountid", "Salesforce Account ID", "string", "text", {}),
    ("salesforceownerid", "Salesforce Owner ID", "string", "text", {}),
    *_SHARED_ROLLUPS,
]

_COMPANY_SPECS: list[_Spec] = [
    *_COMMON,
    ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", {"read_only_value": True}),
    ("name", "Company name", "string", "text", {}),
    ("domain", "Company Domain Name", "string", "text", {}),
    ("website", "Website URL", "string", "text", {}),
    ("phone", "Phone Number", "string", "phonenumber", {}),
    (
        "industry",
        "Industry",
        "enumeration",
        "select",
        {"options": _opts((v.replace("_", " ").title(), v) for v in INDUSTRIES)},
    ),
    ("type", "Type", "enumeration", "select", {"options": _opts(COMPANY_TYPES)}),
    ("address", "Street Address", "string", "text", {}),
    ("city", "City", "string", "text", {}),
    ("state", "State/Region", "string", "text", {}),
    ("zip", "Postal Code", "string", "text", {}),
    ("country", "Country/Region", "string", "text", {}),
    ("numberofemployees", "Number of Employees", "number", "number", {}),
    ("annualrevenue", "Annual Revenue", "number", "number", {}),
    ("description", "Description", "string", "textarea", {}),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", {"options": _opts(LIFECYCLE_STAGES)}),
    ("salesforceaccountid", "Salesforce Account ID", "string", "text", {}),
    ("salesforceownerid", "Salesforce Owner ID", "string", "text", {}),
    (
        "crm_sync_manual_sync",
        "Sync to Salesforce (manual)",
        "bool",
        "booleancheckbox",
        {"hubspot_defined": False},
    ),
    *_SHARED_ROLLUPS,
]

_CURRENCY_OPTIONS = _opts((c, c) for c in CURRENCIES)
_CALCULATED: dict[str, Any] = {"read_only_value": True, "calculated": True}
_DEAL_SPECS: list[_Spec] = [
    *_COMMON,
    ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", {"read_only_value": True}),
    ("dealname", "Deal Name", "string", "text", {}),
    ("amount", "Amount", "number", "number", {}),
    ("closedate", "Close Date", "datetime", "date", {}),
    ("pipeline", "Pipeline", "enumeration", "select", {"dynamic_options": True}),
    ("dealstage", "Deal Stage", "enumeration", "radio", {"dynamic_options": True}),
    ("dealtype", "Deal Type", "enumeration", "radio", {"options": _opts(DEAL_TYPES)}),
    ("description", "Deal Description", "string", "textarea", {}),
    ("closed_lost_reason", "Closed Lost Reason", "string", "textarea", {}),
    ("closed_won_reason", "Closed Won Reason", "string", "textarea", {}),
    ("deal_currency_code", "Currency", "enumeration", "select", {"options": _CURRENCY_OPTIONS}),
    ("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", _CALCULATED),
    ("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", _CALCULATED),
    ("hs_deal_stage_probability", "Deal Stage Probability", "number", "number", _CALCULATED),
    ("salesforceopportunityid", "Salesforce Opportunity ID", "string", "text", {}),
    ("salesforceownerid", "Salesforce Owner ID", "string", "text", {}),
]  # fmt: skip

_GROUPS = {"contacts": "contactinformation", "companies": "companyinformation", "deals": "dealinformation"}
_SPECS = {"contacts": _CONTACT_SPECS, "companies": _COMPANY_SPECS, "deals": _DEAL_SPECS}


def default_definitions(object_type: str) -> list[PropertyDef]:
    """HubSpot's predefined properties (and crm-sync's custom ones) for one object type."""
    out: list[PropertyDef] = []
    for name, label, type_, field_type, extras in _SPECS[object_type]:
        group = "salesforceinformation" if name.startswith("salesforce") else _GROUPS[object_type]
        out.append(
            PropertyDef(name=name, label=label, type=type_, field_type=field_type, group_name=group, **extras)
        )
    return out


class PropertyRegistry:
    """The live property definitions of one object type, including custom ones."""

    def __init__(self, object_type: str, definitions: Iterable[PropertyDef]) -> None:
        self.object_type = object_type
        self.active: dict[str, PropertyDef] = {}
        self.archived: dict[str, PropertyDef] = {}
        for d in definitions:
            self.active[d.name] = d

    def get(self, name: str) -> PropertyDef | None:
        return self.active.get(name)

    def unique_names(self) -> list[str]:
        return [d.name for d in self.active.values() if d.has_unique_value]

    def create(self, raw: Mapping[str, Any], now_iso: str) -> PropertyDef:
        """Validate a ``PropertyCreate`` body and add the property; 409 if the name is taken."""
        for key in ("name", "label", "type", "fieldType", "groupName"):
            if not raw.get(key):
                raise validation_error(f"Missing required field: {key}")
        name = str(raw["name"])
        if name != name.lower() or not name.replace("_", "").isalnum():
            raise validation_error(
                f"Property name {name} is invalid; names use lowercase letters, digits and underscores."
            )
        if name in self.active or name in self.archived:
            raise HubSpotError(409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
        type_, field_type = str(raw["type"]), str(raw["fieldType"])
        if type_ not in TYPES:
            raise validation_error(f"Invalid property type {type_}; valid types are {sorted(TYPES)}")
        if field_type not in FIELD_TYPES:
            raise validation_error(
                f"Invalid fieldType {field_type}; valid field types are {sorted(FIELD_TYPES)}"
            )
        options = [Option.from_json(o, i) for i, o in enumerate(raw.get("options") or [])]
        if type_ == "enumeration" and not options:
            raise validation_error("Enumeration properties need at least one option.")
        if type_ == "bool" and not options:
            options = [Option("Yes", "true", 0), Option("No", "false", 1)]
        unique = bool(raw.get("hasUniqueValue", False))
        if unique and type_ not in ("string", "number"):
            raise validation_error("Only string and number properties can require unique values.")
        definition = PropertyDef(
            name=name,
            label=str(raw["label"]),
            type=type_,
            field_type=field_type,
            group_name=str(raw["groupName"]),
            description=str(raw.get("description") or ""),
            options=options,
            has_unique_value=unique,
            hidden=bool(raw.get("hidden", False)),
            display_order=int(raw.get("displayOrder", -1)),
            hubspot_defined=False,
            form_field=bool(raw.get("formField", True)),
            created_at=now_iso,
            updated_at=now_iso,
        )
        self.active[name] = definition
        return definition

    def update(self, name: str, raw: Mapping[str, Any], now_iso: str) -> PropertyDef:
        """Apply a ``PropertyUpdate`` (label, description, options, ...) to a custom or default one."""
        definition = self.active.get(name)
        if definition is None:
            raise _missing_property(name, self.object_type)
        if "type" in raw and raw["type"] != definition.type and definition.hubspot_defined:
            raise validation_error(f"The type of HubSpot-defined property {name} cannot be changed.")
        if "label" in raw:
            definition.label = str(raw["label"])
        if "description" in raw:
            definition.description = str(raw["description"] or "")
        if "groupName" in raw:
            definition.group_name = str(raw["groupName"])
        if "hidden" in raw:
            definition.hidden = bool(raw["hidden"])
        if "displayOrder" in raw:
            definition.display_order = int(raw["displayOrder"])
        if "options" in raw and not definition.dynamic_options:
            definition.options = [Option.from_json(o, i) for i, o in enumerate(raw["options"] or [])]
        definition.updated_at = now_iso
        return definition

    def archive(self, name: str, now_iso: str) -> None:
        definition = self.active.get(name)
        if definition is None:
            raise _missing_property(name, self.object_type)
        if definition.hubspot_defined:
            raise validation_error(f"HubSpot-defined property {name} cannot be archived.")
        del self.active[name]
        definition.archived = True
        definition.archived_at = now_iso
        self.archived[name] = definition


def _missing_property(name: str, object_type: str) -> HubSpotError:
    upper = KINDS[object_type].upper if object_type in KINDS else object_type.upper()
    return HubSpotError(404, f"Unable to find property {name} for object type {upper}", "OBJECT_NOT_FOUND")


def missing_property(name: str, object_type: str) -> HubSpotError:
    """The 404 for ``GET /crm/v3/properties/{objectType}/{name}`` of an unknown property."""
    return _missing_property(name, object_type)


def property_doesnt_exist(name: str) -> PropertyProblem:
    """The ``PROPERTY_DOESNT_EXIST`` problem HubSpot reports for a write to an unknown property."""
    return PropertyProblem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')


def read_only(name: str) -> PropertyProblem:
    """The ``READ_ONLY_VALUE`` problem for a write to a server-managed property."""
    return PropertyProblem(
        name, "READ_ONLY_VALUE", f'Property "{name}" is a read only property; its value cannot be set.'
    )
