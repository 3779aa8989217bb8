"""Statements of reasons in the layout of the EU DSA Transparency Database (Art. 17 and 24(5) DSA).

The field list, allowed values and limits are those the database's submission API validates
(``POST https://transparency.dsa.ec.europa.eu/api/v1/statement``; its public API documentation and
``StatementStoreRequest::rules`` of github.com/digital-services-act/transparency-database, read at
commit 69e80a0, June 2026). :data:`FIELDS` is that list; :func:`validate` applies its rules.

Invariants:

* one statement per *restricting* decision (``reject``) — approvals restrict nothing and an
  escalation is not a decision yet; ``puid`` is the decision's id, so it is unique and stable;
* a statement holds only documented fields, and every exported statement passes :func:`validate`
  (the builder raises rather than export an invalid one);
* no personal data: no user names, e-mail addresses or file names — only the asset's kind,
  language and dates, the policy label, taxonomy codes and the decision's ground.

The mapping of the project's taxonomy onto DSA categories is :data:`CATEGORY_MAP`; which entries
are exact and which approximate is said there and in docs/api.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

# ------------------------------------------------------------------ the documented fields
DECISION_VISIBILITY = ("DECISION_VISIBILITY_CONTENT_REMOVED", "DECISION_VISIBILITY_CONTENT_DISABLED",
                       "DECISION_VISIBILITY_CONTENT_DEMOTED", "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
                       "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED", "DECISION_VISIBILITY_CONTENT_LABELLED",
                       "DECISION_VISIBILITY_OTHER")
DECISION_MONETARY = ("DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION", "DECISION_MONETARY_OTHER")
DECISION_PROVISION = ("DECISION_PROVISION_PARTIAL_SUSPENSION", "DECISION_PROVISION_TOTAL_SUSPENSION",
                      "DECISION_PROVISION_PARTIAL_TERMINATION", "DECISION_PROVISION_TOTAL_TERMINATION")
DECISION_ACCOUNT = ("DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED")
ACCOUNT_TYPE = ("ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE")
DECISION_GROUND = ("DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT")
CONTENT_TYPE = ("CONTENT_TYPE_APP", "CONTENT_TYPE_AUDIO", "CONTENT_TYPE_IMAGE", "CONTENT_TYPE_PRODUCT",
                "CONTENT_TYPE_SYNTHETIC_MEDIA", "CONTENT_TYPE_TEXT", "CONTENT_TYPE_VIDEO", "CONTENT_TYPE_OTHER")
CATEGORY = tuple(f"STATEMENT_CATEGORY_{c}" for c in (
    "ANIMAL_WELFARE", "CONSUMER_INFORMATION", "CYBER_VIOLENCE", "CYBER_VIOLENCE_AGAINST_WOMEN",
    "DATA_PROTECTION_AND_PRIVACY_VIOLATIONS", "ILLEGAL_OR_HARMFUL_SPEECH", "INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS", "NOT_SPECIFIED_NOTICE", "OTHER_VIOLATION_TC",
    "PROTECTION_OF_MINORS", "RISK_FOR_PUBLIC_SECURITY", "SCAMS_AND_FRAUD", "SELF_HARM",
    "UNSAFE_AND_PROHIBITED_PRODUCTS", "VIOLENCE"))
KEYWORDS = tuple(f"KEYWORD_{k}" for k in (
    "ADULT_SEXUAL_MATERIAL", "AGE_SPECIFIC_RESTRICTIONS", "AGE_SPECIFIC_RESTRICTIONS_MINORS", "ANIMAL_HARM",
    "BIOMETRIC_DATA_BREACH", "BULLYING_AGAINST_GIRLS", "CHILD_SEXUAL_ABUSE_MATERIAL",
    "CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE", "CONTENT_PROMOTING_EATING_DISORDERS", "COORDINATED_HARM",
    "COPYRIGHT_INFRINGEMENT", "CYBER_BULLYING_INTIMIDATION", "CYBER_HARASSMENT", "CYBER_HARASSMENT_AGAINST_WOMEN",
    "CYBER_INCITEMENT", "CYBER_STALKING", "CYBER_STALKING_AGAINST_WOMEN", "DATA_FALSIFICATION", "DEFAMATION",
    "DESIGN_INFRINGEMENT", "DISCRIMINATION", "FEMALE_GENDERED_DISINFORMATION", "GEOGRAPHIC_INDICATIONS_INFRINGEMENT",
    "GEOGRAPHICAL_REQUIREMENTS", "GOODS_SERVICES_NOT_PERMITTED", "GROOMING_SEXUAL_ENTICEMENT_MINORS", "HATE_SPEECH",
    "HIDDEN_ADVERTISEMENT", "HUMAN_EXPLOITATION", "HUMAN_TRAFFICKING", "ILLEGAL_ORGANIZATIONS",
    "IMPERSONATION_ACCOUNT_HIJACKING", "INAUTHENTIC_ACCOUNTS", "INAUTHENTIC_LISTINGS", "INAUTHENTIC_USER_REVIEWS",
    "INCITEMENT_AGAINST_WOMEN", "INCITEMENT_VIOLENCE_HATRED", "INSUFFICIENT_INFORMATION_ON_TRADERS",
    "LANGUAGE_REQUIREMENTS", "MISINFORMATION_DISINFORMATION", "MISLEADING_INFO_CONSUMER_RIGHTS",
    "MISLEADING_INFO_GOODS_SERVICES", "MISSING_PROCESSING_GROUND", "NON_CONSENSUAL_IMAGE_SHARING",
    "NON_CONSENSUAL_IMAGE_SHARING_AGAINST_WOMEN", "NON_CONSENSUAL_MATERIAL_DEEPFAKE",
    "NON_CONSENSUAL_MATERIAL_DEEPFAKE_AGAINST_WOMEN", "NONCOMPLIANCE_PRICING", "NUDITY", "PATENT_INFRINGEMENT",
    "PHISHING", "PROHIBITED_PRODUCTS", "PYRAMID_SCHEMES", "RIGHT_TO_BE_FORGOTTEN", "RISK_ENVIRONMENTAL_DAMAGE",
    "RISK_PUBLIC_HEALTH", "SELF_MUTILATION", "STALKING", "SUICIDE", "TERRORIST_CONTENT", "TRADE_SECRET_INFRINGEMENT",
    "TRADEMARK_INFRINGEMENT", "TRAFFICKING_WOMEN_GIRLS", "UNLAWFUL_SALE_ANIMALS", "UNSAFE_CHALLENGES",
    "UNSAFE_PRODUCTS", "VIOLATION_EU_LAW", "VIOLATION_NATIONAL_LAW", "OTHER"))
SOURCE_TYPE = ("SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION", "SOURCE_VOLUNTARY")
YES_NO = ("Yes", "No")
AUTOMATED_DECISION = ("AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED")
#: EU/EEA member states accepted in ``territorial_scope``
EEA_COUNTRIES = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS", "IT",
                 "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK")
#: upper-case ISO 639-1 codes accepted in ``content_language``
LANGUAGES = (
    "AB", "AA", "AF", "AK", "SQ", "AM", "AR", "AN", "HY", "AS", "AV", "AE", "AY", "AZ", "BM", "BA", "EU", "BE", "BN",
    "BH", "BI", "BS", "BR", "BG", "MY", "CA", "KM", "CH", "CE", "NY", "ZH", "CU", "CV", "KW", "CO", "CR", "HR", "CS",
    "DA", "DV", "NL", "DZ", "EN", "EO", "ET", "EE", "FO", "FJ", "FI", "FR", "FF", "GD", "GL", "LG", "KA", "DE", "KI",
    "EL", "KL", "GN", "GU", "HT", "HA", "HE", "HZ", "HI", "HO", "HU", "IS", "IO", "IG", "ID", "IA", "IE", "IU", "IK",
    "GA", "IT", "JA", "JV", "KN", "KR", "KS", "KK", "RW", "KV", "KG", "KO", "KJ", "KU", "KY", "LO", "LA", "LV", "LB",
    "LI", "LN", "LT", "LU", "MK", "MG", "MS", "ML", "MT", "GV", "MI", "MR", "MH", "RO", "MN", "NA", "NV", "ND", "NG",
    "NE", "SE", "NO", "NB", "NN", "II", "OC", "OJ", "OR", "OM", "OS", "PI", "PA", "PS", "FA", "PL", "PT", "QU", "RM",
    "RN", "RU", "SM", "SG", "SA", "SC", "SR", "SN", "SD", "SI", "SK", "SL", "SO", "ST", "NR", "ES", "SU", "SW", "SS",
    "SV", "TL", "TY", "TG", "TA", "TT", "TE", "TH", "BO", "TI", "TO", "TS", "TN", "TR", "TK", "TW", "UG", "UK", "UR",
    "UZ", "VE", "VI", "VO", "WA", "CY", "FY", "WO", "XH", "YI", "YO", "ZA", "ZU")


@dataclass(frozen=True)
class Field:
    """One documented attribute: ``kind`` is ``enum`` | ``enums`` (a list of enum values) | ``text`` | ``date`` |
    ``object`` (``content_id``: ``{"EAN-13": "13 digits"}``)."""

    name: str
    kind: str
    required: bool = False
    values: tuple[str, ...] = ()
    max_len: int | None = None


#: Every attribute of a statement, in the order of the CSV columns.
FIELDS: tuple[Field, ...] = (
    Field("puid", "text", True, max_len=500),
    Field("decision_visibility", "enums", values=DECISION_VISIBILITY),
    Field("decision_visibility_other", "text", max_len=500),
    Field("end_date_visibility_restriction", "date"),
    Field("decision_monetary", "enum", values=DECISION_MONETARY),
    Field("decision_monetary_other", "text", max_len=500),
    Field("end_date_monetary_restriction", "date"),
    Field("decision_provision", "enum", values=DECISION_PROVISION),
    Field("end_date_service_restriction", "date"),
    Field("decision_account", "enum", values=DECISION_ACCOUNT),
    Field("end_date_account_restriction", "date"),
    Field("account_type", "enum", values=ACCOUNT_TYPE),
    Field("decision_ground", "enum", True, values=DECISION_GROUND),
    Field("decision_ground_reference_url", "text", max_len=500),
    Field("illegal_content_legal_ground", "text", max_len=500),
    Field("illegal_content_explanation", "text", max_len=2000),
    Field("incompatible_content_ground", "text", max_len=500),
    Field("incompatible_content_explanation", "text", max_len=2000),
    Field("incompatible_content_illegal", "enum", values=YES_NO),
    Field("category", "enum", True, values=CATEGORY),
    Field("category_addition", "enums", values=CATEGORY),
    Field("category_specification", "enums", values=KEYWORDS),
    Field("category_specification_other", "text", max_len=500),
    Field("content_type", "enums", True, values=CONTENT_TYPE),
    Field("content_type_other", "text", max_len=500),
    Field("content_id", "object"),
    Field("content_language", "enum", values=LANGUAGES),
    Field("content_date", "date", True),
    Field("application_date", "date", True),
    Field("territorial_scope", "enums", values=EEA_COUNTRIES),
    Field("decision_facts", "text", True, max_len=5000),
    Field("source_type", "enum", True, values=SOURCE_TYPE),
    Field("source_identity", "text", max_len=500),
    Field("automated_detection", "enum", True, values=YES_NO),
    Field("automated_decision", "enum", True, values=AUTOMATED_DECISION),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
_BY_NAME = {f.name: f for f in FIELDS}
_PUID = re.compile(r"^[a-zA-Z0-9_-]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_BOUNDS = {"content_date": ("2000-01-01", "2038-01-01"), "application_date": ("2020-01-01", "2038-01-01")}


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == []


def validate(st: dict[str, Any]) -> list[str]:
    """The problems of one statement under the database's documented rules (empty: valid)."""
    problems = [f"{k}: not a documented field" for k in st if k not in _BY_NAME]
    for f in FIELDS:
        v = st.get(f.name)
        if _empty(v):
            if f.required:
                problems.append(f"{f.name}: required")
            continue
        if f.kind == "enums":
            if not isinstance(v, list):
                problems.append(f"{f.name}: must be a list")
            elif bad := [x for x in v if x not in f.values]:
                problems.append(f"{f.name}: not allowed: {', '.join(map(str, bad))}")
        elif f.kind == "enum" and v not in f.values:
            problems.append(f"{f.name}: not allowed: {v}")
        elif f.kind == "text" and (not isinstance(v, str) or (f.max_len and len(v) > f.max_len)):
            problems.append(f"{f.name}: text of at most {f.max_len} characters")
        elif f.kind == "object" and not (isinstance(v, dict) and set(v) <= {"EAN-13"}
                                         and all(re.fullmatch(r"\d{13}", str(x)) for x in v.values())):
            problems.append(f"{f.name}: an object {{\"EAN-13\": \"13 digits\"}}")
        elif f.kind == "date":
            lo, hi = _DATE_BOUNDS.get(f.name, ("0000-00-00", "2038-01-01"))
            if not isinstance(v, str) or not _DATE.match(v) or not lo <= v <= hi:
                problems.append(f"{f.name}: a date YYYY-MM-DD between {lo} and {hi}")
    if not _empty(st.get("puid")) and not _PUID.match(str(st["puid"])):
        problems.append("puid: only letters, digits, '-' and '_'")
    if all(_empty(st.get(k)) for k in ("decision_visibility", "decision_monetary", "decision_provision",
                                       "decision_account")):
        problems.append("decision_visibility/monetary/provision/account: at least one restriction is required")
    ground = st.get("decision_ground")
    for g, needed, excluded in (
            ("DECISION_GROUND_ILLEGAL_CONTENT", ("illegal_content_legal_ground", "illegal_content_explanation"),
             ("incompatible_content_ground", "incompatible_content_explanation", "incompatible_content_illegal")),
            ("DECISION_GROUND_INCOMPATIBLE_CONTENT",
             ("incompatible_content_ground", "incompatible_content_explanation"),
             ("illegal_content_legal_ground", "illegal_content_explanation"))):
        if ground == g:
            problems += [f"{k}: required when decision_ground is {g}" for k in needed if _empty(st.get(k))]
            problems += [f"{k}: only with the other decision_ground" for k in excluded if not _empty(st.get(k))]
    for field, other, value in (("decision_visibility", "decision_visibility_other", "DECISION_VISIBILITY_OTHER"),
                                ("decision_monetary", "decision_monetary_other", "DECISION_MONETARY_OTHER"),
                                ("content_type", "content_type_other", "CONTENT_TYPE_OTHER")):
        chosen = st.get(field)
        has = value in chosen if isinstance(chosen, list) else chosen == value
        if has and _empty(st.get(other)):
            problems.append(f"{other}: required when {field} is {value}")
        if not has and not _empty(st.get(other)):
            problems.append(f"{other}: only when {field} is {value}")
    if st.get("source_type") == "SOURCE_VOLUNTARY" and not _empty(st.get("source_identity")):
        problems.append("source_identity: not given for own-initiative decisions")
    return problems


# ------------------------------------------------------------------ the project's taxonomy → DSA
@dataclass(frozen=True)
class Mapping:
    category: str
    keywords: tuple[str, ...] = ()
    other_keyword: str = ""  # with KEYWORD_OTHER: what the keyword list lacks
    exact: bool = True


OTHER_TC = "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"

#: Built-in taxonomy codes → category and keywords. ``exact=False``: the nearest DSA entry, see docs/api.md.
CATEGORY_MAP: dict[str, Mapping] = {
    "sexual/explicit_nudity": Mapping(OTHER_TC, ("KEYWORD_ADULT_SEXUAL_MATERIAL", "KEYWORD_NUDITY")),
    "sexual/suggestive": Mapping(OTHER_TC, ("KEYWORD_NUDITY",), exact=False),
    "sexual/text": Mapping(OTHER_TC, ("KEYWORD_ADULT_SEXUAL_MATERIAL",)),
    "violence/weapons": Mapping("STATEMENT_CATEGORY_VIOLENCE", ("KEYWORD_OTHER",), "Weapons shown", exact=False),
    "violence/graphic": Mapping("STATEMENT_CATEGORY_VIOLENCE", ("KEYWORD_OTHER",), "Graphic violence", exact=False),
    "hate/slur": Mapping("STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH", ("KEYWORD_HATE_SPEECH",)),
    "harassment/insult": Mapping("STATEMENT_CATEGORY_CYBER_VIOLENCE", ("KEYWORD_CYBER_HARASSMENT",)),
    "harassment/threat": Mapping("STATEMENT_CATEGORY_CYBER_VIOLENCE", ("KEYWORD_CYBER_BULLYING_INTIMIDATION",)),
    "profanity": Mapping(OTHER_TC, ("KEYWORD_OTHER",), "Profanity"),
    "self_harm": Mapping("STATEMENT_CATEGORY_SELF_HARM", ("KEYWORD_SELF_MUTILATION", "KEYWORD_SUICIDE")),
    "spam/links": Mapping(OTHER_TC, ("KEYWORD_OTHER",), "Spam and unsolicited links"),
    "known_bad/hash_match": Mapping(OTHER_TC, ("KEYWORD_OTHER",), "Matches known prohibited content", exact=False),
    # context signals, not violations by themselves: a statement exists only where an operator's policy
    # restricts on them (e.g. no faces or people on a children's platform), under that platform's terms
    "people/face": Mapping(OTHER_TC, ("KEYWORD_OTHER",), "Shows a human face (platform terms)", exact=False),
    "people/faces_count": Mapping(OTHER_TC, ("KEYWORD_OTHER",), "Shows several faces (platform terms)",
                                  exact=False),
    "context/people": Mapping(OTHER_TC, ("KEYWORD_OTHER",), "Shows people (platform terms)", exact=False),
}

#: Admin-added codes fall back on their group (the part before ``/``), then on "other violation of T&C".
GROUP_MAP: dict[str, Mapping] = {
    "sexual": Mapping(OTHER_TC, ("KEYWORD_ADULT_SEXUAL_MATERIAL",), exact=False),
    "violence": Mapping("STATEMENT_CATEGORY_VIOLENCE", ("KEYWORD_OTHER",), exact=False),
    "hate": Mapping("STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH", ("KEYWORD_HATE_SPEECH",), exact=False),
    "harassment": Mapping("STATEMENT_CATEGORY_CYBER_VIOLENCE", ("KEYWORD_CYBER_HARASSMENT",), exact=False),
    "self_harm": Mapping("STATEMENT_CATEGORY_SELF_HARM", exact=False),
}

CONTENT_TYPES = {"video": "CONTENT_TYPE_VIDEO", "audio": "CONTENT_TYPE_AUDIO", "image": "CONTENT_TYPE_IMAGE",
                 "text": "CONTENT_TYPE_TEXT"}


def mapping_for(code: str, name: str = "") -> Mapping:
    if code in CATEGORY_MAP:
        return CATEGORY_MAP[code]
    group = GROUP_MAP.get(code.split("/", 1)[0])
    other = (name or code)[:500]
    if group:
        return Mapping(group.category, group.keywords, other if "KEYWORD_OTHER" in group.keywords else "", False)
    return Mapping(OTHER_TC, ("KEYWORD_OTHER",), other, False)


@dataclass(frozen=True)
class DecisionFacts:
    """What one statement is built from (read from the database by :func:`statements_between`)."""

    decision_id: str
    outcome: str
    reason_codes: list[str]
    category_names: dict[str, str]
    category_severity: dict[str, int]
    ground: str
    policy_label: str
    automated_detection: bool
    automated_decision: bool
    decided_at: datetime
    asset_kind: str
    asset_created_at: datetime
    language: str  # ISO 639-1 of the asset's main language, or ""
    evidence: list[str]  # "harassment/threat 0.93 (text, 3.0–6.5 s)" …


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def statement_for(f: DecisionFacts, *, territorial_scope: Iterable[str] = EEA_COUNTRIES) -> dict[str, Any]:
    """The statement of reasons of one restricting decision; raises ``ValueError`` if it would not validate."""
    codes = sorted(f.reason_codes, key=lambda c: (-f.category_severity.get(c, 0), f.reason_codes.index(c)))
    maps = [mapping_for(c, f.category_names.get(c, "")) for c in codes] or [Mapping(OTHER_TC, ("KEYWORD_OTHER",),
                                                                                    "Unspecified", False)]
    primary = maps[0].category
    additions = sorted({m.category for m in maps[1:]} - {primary})
    keywords = sorted({k for m in maps for k in m.keywords})
    others = "; ".join(dict.fromkeys(m.other_keyword for m in maps if m.other_keyword))
    names = ", ".join(f"{c} ({f.category_names[c]})" if c in f.category_names else c for c in codes)
    lang = f.language.upper()
    facts = f.ground
    if f.evidence:
        facts += "\nEvidence: " + "; ".join(f.evidence)
    st: dict[str, Any] = {
        "puid": f.decision_id,
        "decision_visibility": ["DECISION_VISIBILITY_CONTENT_DISABLED"],
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "incompatible_content_ground": _clip(f"Policy {f.policy_label or 'n/a'}: {names or 'no category'}", 500),
        "incompatible_content_explanation": _clip(f.ground, 2000),
        "category": primary,
        "category_addition": additions,
        "category_specification": keywords,
        "category_specification_other": _clip(others, 500) if "KEYWORD_OTHER" in keywords else "",
        "content_type": [CONTENT_TYPES.get(f.asset_kind, "CONTENT_TYPE_OTHER")],
        "content_type_other": "" if f.asset_kind in CONTENT_TYPES else _clip(f.asset_kind or "unknown", 500),
        "content_language": lang if lang in LANGUAGES else None,
        "content_date": f.asset_created_at.date().isoformat(),
        "application_date": f.decided_at.date().isoformat(),
        "territorial_scope": sorted(set(territorial_scope)),
        "decision_facts": _clip(facts, 5000),
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes" if f.automated_detection else "No",
        "automated_decision": "AUTOMATED_DECISION_FULLY" if f.automated_decision
        else "AUTOMATED_DECISION_NOT_AUTOMATED",
    }
    st = {k: v for k, v in st.items() if not _empty(v)}
    if problems := validate(st):
        raise ValueError(f"statement for decision {f.decision_id} is invalid: {'; '.join(problems)}")
    return st


# ------------------------------------------------------------------ output
def to_json(statements: list[dict[str, Any]]) -> str:
    """The body of the database's bulk endpoint (``POST /api/v1/statements``): ``{"statements": [...]}``."""
    return json.dumps({"statements": statements}, ensure_ascii=False, indent=1)


def to_csv(statements: list[dict[str, Any]]) -> str:
    """One row per statement, one column per documented field (lists and objects as JSON, absent fields empty)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(FIELD_NAMES), lineterminator="\n")
    w.writeheader()
    for st in statements:
        w.writerow({k: json.dumps(v) if isinstance(v, list | dict) else ("" if v is None else v)
                    for k, v in ((k, st.get(k)) for k in FIELD_NAMES)})
    return buf.getvalue()


def from_csv_row(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row back as a statement (the inverse of :func:`to_csv` for one row)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if v == "":
            continue
        out[k] = json.loads(v) if _BY_NAME.get(k, Field(k, "text")).kind in ("enums", "object") else v
    return out


def parse_day(value: str, what: str) -> date:
    """``YYYY-MM-DD`` (or an ISO date-time) as a date; ``ValueError`` naming ``what`` otherwise."""
    try:
        return datetime.fromisoformat(value).date()
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a date YYYY-MM-DD, not {value!r}") from None
