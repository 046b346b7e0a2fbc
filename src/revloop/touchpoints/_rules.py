"""Channel rule sets as data: conditions, rules, versioned rule sets (spec layer).

A :class:`RuleSet` is an ordered list of :class:`Rule`; each rule names a channel
and a condition over the ``source``, ``medium`` and ``campaign`` of a session.
The first rule that matches wins; when none matches the row gets the rule set's
``default`` ("Unassigned"). Conditions are plain data (a leaf
:class:`Condition`, or :class:`AllOf` / :class:`AnyOf` of conditions), so a rule
set round-trips through :meth:`RuleSet.to_dict` / :meth:`RuleSet.from_dict` and
can be written by hand as a list of dicts.

Three rule sets ship:

- :data:`GA4_RULES`: Google's documented default channel group,
  https://support.google.com/analytics/answer/9756891, as codified in
  ``Velir/dbt-ga4`` ``macros/default_channel_grouping.sql`` (MIT, 2025-11).
- :data:`VELIR_RULES`: the two places where Velir's macro departs from Google's
  page (null source and medium count as Direct; Email *contains* a mail word).
- :data:`SNOWPLOW_RULES`: ``snowplow/dbt-snowplow-unified``
  ``macros/field_definitions/channel_group_query.sql`` (default, non-BigQuery
  variant): Direct on ``direct``/``none`` without parentheses, Cross-network on
  the medium, every paid medium classified before Display, no ``social-media``,
  the ``intersitial`` misspelling, and a Chatbot channel.

Matching is case-insensitive and ignores surrounding blanks: every value is
trimmed and lower-cased before it is compared, and the rule values are
lower-cased when the rule is built (GA4's conditions are case-insensitive;
Snowplow lower-cases and trims everything). Regular expressions are searched
(``REGEXP_CONTAINS`` semantics) in the lower-cased value: anchor them with
``^...$`` for a full match, as Google's own patterns are.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, TypeAlias, get_args

from revloop.exceptions import ConfigError

__all__ = [
    "GA4_RULES",
    "SNOWPLOW_RULES",
    "SOURCE_CATEGORIES",
    "VELIR_RULES",
    "AllOf",
    "AnyOf",
    "Condition",
    "Rule",
    "RuleSet",
    "load_source_categories",
]

Field = Literal["source", "medium", "campaign"]
Op = Literal["in", "regex", "contains", "startswith", "endswith", "in_category", "is_null"]

FIELDS: tuple[str, ...] = get_args(Field)
OPS: tuple[str, ...] = get_args(Op)

#: The source categories of Google's list, in the order GA4 uses them.
SOURCE_CATEGORIES: tuple[str, ...] = ("SEARCH", "SOCIAL", "SHOPPING", "VIDEO")

_CATEGORY_PREFIX = "SOURCE_CATEGORY_"


def _norm(value: str) -> str:
    return value.strip().lower()


def _category(name: str) -> str:
    key = name.strip().upper().removeprefix(_CATEGORY_PREFIX)
    if not key:
        raise ConfigError(
            f"source category {name!r} is empty. Use one of {list(SOURCE_CATEGORIES)} "
            "or a name of your own such as 'REVIEW'."
        )
    return key


@dataclass(frozen=True)
class Condition:
    """One test on one field, e.g. ``medium`` ``in`` ``("display", "cpm")``.

    Attributes
    ----------
    field
        ``"source"``, ``"medium"`` or ``"campaign"``.
    op
        ``"in"`` (equals one of ``values``), ``"regex"`` (a value matches one of the
        patterns, searched), ``"contains"``, ``"startswith"``, ``"endswith"`` (any of
        ``values``), ``"in_category"`` (the source is listed under one of the source
        categories ``values``, e.g. ``"SEARCH"``) or ``"is_null"`` (absent or blank;
        ``values`` must be empty).
    values
        Lower-cased and trimmed on construction, except regex patterns (kept as
        written, matched against the lower-cased value) and category names
        (upper-cased, without a ``SOURCE_CATEGORY_`` prefix).

    Examples
    --------
    >>> Condition("medium", "in", ("Display", " CPM "))
    Condition(field='medium', op='in', values=('display', 'cpm'))
    """

    field: Field
    op: Op
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.field not in FIELDS:
            raise ConfigError(
                f"channel rule condition has field {self.field!r}; expected one of {list(FIELDS)}."
            )
        if self.op not in OPS:
            raise ConfigError(
                f"channel rule condition on {self.field!r} has op {self.op!r}; "
                f"expected one of {list(OPS)}."
            )
        values = (self.values,) if isinstance(self.values, str) else tuple(self.values)
        if self.op == "is_null":
            if values:
                raise ConfigError(
                    f"condition {self.field!r} is_null takes no values; got {values!r}."
                )
        elif not values:
            raise ConfigError(
                f"condition {self.field!r} {self.op!r} needs at least one value; got none."
            )
        if self.op == "regex":
            cleaned = values
        elif self.op == "in_category":
            if self.field != "source":
                raise ConfigError(
                    f"in_category tests the source, not {self.field!r}. "
                    "Write {'field': 'source', 'op': 'in_category', 'values': [...]}."
                )
            cleaned = tuple(_category(v) for v in values)
        else:
            cleaned = tuple(_norm(v) for v in values)
        object.__setattr__(self, "values", cleaned)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form: ``{"field": ..., "op": ..., "values": [...]}``."""
        out: dict[str, Any] = {"field": self.field, "op": self.op}
        if self.values:
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True)
class AllOf:
    """True when every condition holds."""

    conditions: tuple[Predicate, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"all": [c.to_dict() for c in self.conditions]}


@dataclass(frozen=True)
class AnyOf:
    """True when at least one condition holds."""

    conditions: tuple[Predicate, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"any": [c.to_dict() for c in self.conditions]}


Predicate: TypeAlias = Condition | AllOf | AnyOf


def _predicate_from(data: Any, where: str) -> Predicate:
    if isinstance(data, Condition | AllOf | AnyOf):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where}: a condition must be a dict, got {data!r}. Write "
            "{'field': 'medium', 'op': 'in', 'values': ['cpc']} or {'all': [...]} / {'any': [...]}."
        )
    if set(data) == {"all"} or set(data) == {"any"}:
        (kind, items) = next(iter(data.items()))
        if isinstance(items, str | bytes) or not isinstance(items, Iterable):
            raise ConfigError(f"{where}: {kind!r} needs a list of conditions, got {items!r}.")
        parts = tuple(_predicate_from(x, f"{where}.{kind}[{i}]") for i, x in enumerate(items))
        if not parts:
            raise ConfigError(f"{where}: {kind!r} needs at least one condition.")
        return AllOf(parts) if kind == "all" else AnyOf(parts)
    unknown = set(data) - {"field", "op", "values", "value"}
    if unknown or "field" not in data or "op" not in data:
        raise ConfigError(
            f"{where}: cannot read condition {dict(data)!r}. Expected keys 'field', 'op' and "
            "'values' (or 'value'), or a single key 'all' / 'any'."
        )
    raw = data.get("values", data.get("value", ()))
    values = (raw,) if isinstance(raw, str) else tuple(raw)
    return Condition(data["field"], data["op"], tuple(str(v) for v in values))


@dataclass(frozen=True)
class Rule:
    """A channel and the condition a row must meet to get it.

    Examples
    --------
    >>> r = Rule.from_dict({"channel": "Audio", "when": {"field": "medium", "op": "in", "values": ["audio"]}})
    >>> r.when
    Condition(field='medium', op='in', values=('audio',))
    """

    channel: str
    when: Predicate
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.channel, str) or not self.channel.strip():
            raise ConfigError(
                f"a channel rule needs a non-empty channel name, got {self.channel!r}."
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "rule") -> Rule:
        """Build a rule from ``{"channel": ..., "when": {...}, "note": ...}``."""
        if not isinstance(data, Mapping) or "channel" not in data or "when" not in data:
            raise ConfigError(
                f"{where}: a rule must be a dict with 'channel' and 'when', got {data!r}."
            )
        return cls(
            str(data["channel"]),
            _predicate_from(data["when"], f"{where} ({data['channel']!r})"),
            str(data.get("note", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel, "when": self.when.to_dict()}
        if self.note:
            out["note"] = self.note
        return out


@functools.cache
def _google_source_categories() -> dict[str, frozenset[str]]:
    text = (
        resources.files("revloop.touchpoints")
        .joinpath("data", "ga4_source_categories.csv")
        .read_text(encoding="utf-8")
    )
    out: dict[str, set[str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        out.setdefault(_category(row["source_category"]), set()).add(_norm(row["source"]))
    return {k: frozenset(v) for k, v in out.items()}


def load_source_categories() -> dict[str, frozenset[str]]:
    """Google's source-category list: category -> lower-cased sources.

    Read from the packaged ``data/ga4_source_categories.csv``, a copy of
    ``Velir/dbt-ga4`` ``seeds/ga4_source_categories.csv`` (MIT), itself taken from
    the spreadsheet linked at https://support.google.com/analytics/answer/9756891.

    Examples
    --------
    >>> cats = load_source_categories()
    >>> sorted(cats)
    ['SEARCH', 'SHOPPING', 'SOCIAL', 'VIDEO']
    >>> "google" in cats["SEARCH"], "linkedin.com" in cats["SOCIAL"], "youtube" in cats["VIDEO"]
    (True, True, True)
    """
    return dict(_google_source_categories())


@dataclass(frozen=True)
class RuleSet:
    """An ordered, versioned list of channel rules; the first match wins.

    Attributes
    ----------
    version
        A name that pins the definition, e.g. ``"ga4-2025-11"``; reports print it.
    rules
        The rules, in priority order.
    default
        The channel of a row no rule matches.
    source_categories
        Category -> sources. ``None`` means Google's list
        (:func:`load_source_categories`), read lazily on first use.
    reference
        Where the definition comes from.

    Examples
    --------
    >>> rs = RuleSet.from_dict({
    ...     "version": "acme-1",
    ...     "rules": [
    ...         {"channel": "Partners", "when": {"field": "source", "op": "in", "values": ["g2", "capterra"]}},
    ...         {"channel": "Paid", "when": {"field": "medium", "op": "regex", "values": ["^(cpc|ppc)$"]}},
    ...     ],
    ... })
    >>> rs.channels
    ('Partners', 'Paid', 'Unassigned')
    >>> RuleSet.from_dict(rs.to_dict()) == rs
    True
    """

    version: str
    rules: tuple[Rule, ...]
    default: str = "Unassigned"
    source_categories: Mapping[str, frozenset[str]] | None = field(default=None, hash=False)
    reference: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        for i, r in enumerate(self.rules):
            if not isinstance(r, Rule):
                raise ConfigError(
                    f"rule set {self.version!r}: rules[{i}] is {type(r).__name__}, not Rule. "
                    "Build rule sets from dicts with RuleSet.from_dict / RuleSet.from_rules."
                )
        if self.source_categories is not None:
            cats = {
                _category(k): frozenset(_norm(s) for s in v)
                for k, v in self.source_categories.items()
            }
            object.__setattr__(self, "source_categories", cats)

    @property
    def channels(self) -> tuple[str, ...]:
        """Every channel this rule set can output, in rule order, default last."""
        seen: dict[str, None] = {}
        for r in self.rules:
            seen.setdefault(r.channel, None)
        seen.setdefault(self.default, None)
        return tuple(seen)

    def categories(self) -> dict[str, frozenset[str]]:
        """The source categories in force (Google's list when none were given)."""
        if self.source_categories is None:
            return load_source_categories()
        return dict(self.source_categories)

    def with_source_categories(
        self, extra: Mapping[str, Iterable[str]], *, replace: bool = False
    ) -> RuleSet:
        """A copy whose source categories include ``extra``.

        A source listed in ``extra`` is removed from every other category first, so
        this both adds sources (``{"SOCIAL": ["x.com"]}``) and reclassifies them.
        With ``replace=True`` the categories are exactly ``extra``.

        Examples
        --------
        >>> rs = GA4_RULES.with_source_categories({"SOCIAL": ["X.com", "bing"]})
        >>> "x.com" in rs.categories()["SOCIAL"], "bing" in rs.categories()["SEARCH"]
        (True, False)
        """
        added = {
            _category(k): {_norm(s) for s in ([v] if isinstance(v, str) else v)}
            for k, v in extra.items()
        }
        if replace:
            cats: dict[str, set[str]] = added
        else:
            moved = set().union(*added.values()) if added else set()
            cats = {k: set(v) - moved for k, v in self.categories().items()}
            for k, v in added.items():
                cats.setdefault(k, set()).update(v)
        return RuleSet(
            self.version,
            self.rules,
            self.default,
            {k: frozenset(v) for k, v in cats.items()},
            self.reference,
        )

    @classmethod
    def from_rules(
        cls,
        rules: Sequence[Rule | Mapping[str, Any]],
        *,
        version: str = "custom",
        default: str = "Unassigned",
        source_categories: Mapping[str, Iterable[str]] | None = None,
        reference: str = "",
    ) -> RuleSet:
        """Build a rule set from :class:`Rule` objects or rule dicts."""
        if isinstance(rules, str | bytes | Mapping):
            raise ConfigError(
                f"rules must be a list of rules, got {type(rules).__name__}. "
                "Pass [{'channel': ..., 'when': {...}}, ...]."
            )
        built = tuple(
            r if isinstance(r, Rule) else Rule.from_dict(r, f"rules[{i}]")
            for i, r in enumerate(rules)
        )
        cats = (
            None
            if source_categories is None
            else {
                k: frozenset([v] if isinstance(v, str) else v) for k, v in source_categories.items()
            }
        )
        return cls(version, built, default, cats, reference)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        """Build a rule set from ``{"version", "rules", "default"?, "source_categories"?}``."""
        if not isinstance(data, Mapping) or "rules" not in data:
            raise ConfigError(
                f"a rule set dict needs 'rules' (and 'version'); got keys {sorted(data) if isinstance(data, Mapping) else data!r}."
            )
        return cls.from_rules(
            data["rules"],
            version=str(data.get("version", "custom")),
            default=str(data.get("default", "Unassigned")),
            source_categories=data.get("source_categories"),
            reference=str(data.get("reference", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready). Google's source list is not inlined."""
        out: dict[str, Any] = {
            "version": self.version,
            "rules": [r.to_dict() for r in self.rules],
            "default": self.default,
        }
        if self.source_categories is not None:
            out["source_categories"] = {k: sorted(v) for k, v in self.source_categories.items()}
        if self.reference:
            out["reference"] = self.reference
        return out


# ----------------------------------------------------------------------------- builders


def _in(f: Field, *values: str) -> Condition:
    return Condition(f, "in", values)


def _re(f: Field, *patterns: str) -> Condition:
    return Condition(f, "regex", patterns)


def _cat(*categories: str) -> Condition:
    return Condition("source", "in_category", categories)


def _all(*conds: Predicate) -> AllOf:
    return AllOf(conds)


def _any(*conds: Predicate) -> AnyOf:
    return AnyOf(conds)


#: Google's paid-medium pattern.
PAID_MEDIUM = r"^(.*cp.*|ppc|retargeting|paid.*)$"
#: Google's shopping-campaign pattern (``[^a-df-z]`` lets "e-shop" and "eshop" in, not "workshop").
SHOP_CAMPAIGN = r"^(.*(([^a-df-z]|^)shop|shopping).*)$"
_EMAIL = ("email", "e-mail", "e_mail", "e mail")
_SOCIAL_MEDIA = ("social", "social-network", "social-media", "sm", "social network", "social media")
_DISPLAY = ("display", "banner", "expandable", "interstitial", "cpm")

_GA4_DIRECT = _all(_in("source", "(direct)"), _in("medium", "(not set)", "(none)"))


def _ga4_rules(direct: Predicate, email: Predicate) -> tuple[Rule, ...]:
    paid = _re("medium", PAID_MEDIUM)
    shop = _any(_cat("SHOPPING"), _re("campaign", SHOP_CAMPAIGN))
    return (
        Rule("Direct", direct, "source exactly (direct) and medium (not set) or (none)"),
        Rule("Cross-network", Condition("campaign", "contains", ("cross-network",))),
        Rule("Paid Shopping", _all(shop, paid)),
        Rule("Paid Search", _all(_cat("SEARCH"), paid)),
        Rule("Paid Social", _all(_cat("SOCIAL"), paid)),
        Rule("Paid Video", _all(_cat("VIDEO"), paid)),
        Rule("Display", _in("medium", *_DISPLAY)),
        Rule("Paid Other", paid),
        Rule("Organic Shopping", shop),
        Rule("Organic Social", _any(_cat("SOCIAL"), _in("medium", *_SOCIAL_MEDIA))),
        Rule("Organic Video", _any(_cat("VIDEO"), _re("medium", r"^(.*video.*)$"))),
        Rule("Organic Search", _any(_cat("SEARCH"), _in("medium", "organic"))),
        Rule("Referral", _in("medium", "referral", "app", "link")),
        Rule("Email", email),
        Rule("Affiliates", _in("medium", "affiliate")),
        Rule("Audio", _in("medium", "audio")),
        Rule("SMS", _any(_in("source", "sms"), _in("medium", "sms"))),
        Rule(
            "Mobile Push Notifications",
            _any(
                Condition("medium", "endswith", ("push",)),
                Condition("medium", "contains", ("mobile", "notification")),
                _in("source", "firebase"),
            ),
        ),
    )


#: GA4's default channel group, as documented by Google (first match wins).
GA4_RULES = RuleSet(
    "ga4-2025-11",
    _ga4_rules(_GA4_DIRECT, _any(_in("source", *_EMAIL), _in("medium", *_EMAIL))),
    reference=(
        "https://support.google.com/analytics/answer/9756891 ; codified in Velir/dbt-ga4 "
        "macros/default_channel_grouping.sql (MIT, 2025-11); source categories from "
        "Velir/dbt-ga4 seeds/ga4_source_categories.csv"
    ),
)

#: Velir/dbt-ga4's codification: null source and medium are Direct; Email *contains* a mail word.
VELIR_RULES = RuleSet(
    "velir-dbt-ga4-2025-11",
    _ga4_rules(
        _any(_all(Condition("source", "is_null"), Condition("medium", "is_null")), _GA4_DIRECT),
        _any(
            Condition("source", "contains", _EMAIL),
            Condition("medium", "contains", _EMAIL),
        ),
    ),
    reference="Velir/dbt-ga4 macros/default_channel_grouping.sql (MIT, 2025-11)",
)


def _snowplow_rules() -> tuple[Rule, ...]:
    paid = _re("medium", PAID_MEDIUM)
    shop = _any(_cat("SHOPPING"), _re("campaign", SHOP_CAMPAIGN))
    return (
        Rule("Direct", _all(_in("source", "direct"), _in("medium", "not set", "none"))),
        Rule("Cross-network", Condition("medium", "contains", ("cross-network",))),
        Rule("Paid Shopping", _all(paid, shop)),
        Rule("Paid Search", _all(paid, _cat("SEARCH"))),
        Rule("Paid Social", _all(paid, _cat("SOCIAL"))),
        Rule("Paid Video", _all(paid, _cat("VIDEO"))),
        Rule("Paid Other", paid, "Snowplow nests every paid medium before Display"),
        Rule(
            "Display",
            _in("medium", "display", "banner", "expandable", "intersitial", "cpm"),
            "'intersitial' is misspelt in Snowplow's non-BigQuery variants",
        ),
        Rule("Organic Shopping", shop),
        Rule(
            "Organic Social",
            _any(
                _cat("SOCIAL"),
                _in("medium", "social", "social-network", "sm", "social network", "social media"),
            ),
        ),
        Rule("Organic Video", _any(_cat("VIDEO"), _re("medium", r"^(.*video.*)$"))),
        Rule("Organic Search", _any(_cat("SEARCH"), _in("medium", "organic"))),
        Rule("Referral", _in("medium", "referral", "app", "link")),
        Rule("Email", _any(_in("source", *_EMAIL), _in("medium", *_EMAIL))),
        Rule("Affiliates", _in("medium", "affiliate")),
        Rule("Audio", _in("medium", "audio")),
        Rule("Chatbot", _in("medium", "chatbot")),
        Rule("SMS", _any(_in("source", "sms"), _in("medium", "sms"))),
        Rule(
            "Mobile Push Notifications",
            _any(
                Condition("medium", "endswith", ("push",)),
                _re("medium", ".*(mobile|notification).*"),
                _in("source", "firebase"),
            ),
        ),
    )


#: Snowplow's default channel group (dbt-snowplow-unified ``channel_group_query``, default variant).
SNOWPLOW_RULES = RuleSet(
    "snowplow-unified-079facb",
    _snowplow_rules(),
    reference=(
        "snowplow/dbt-snowplow-unified macros/field_definitions/channel_group_query.sql "
        "(commit 079facb, default__ variant; Snowplow Personal & Academic Licence: "
        "re-implemented from its documented behaviour, not copied)"
    ),
)
