"""Query parameters of ``GET /api/v1/surveillance/extract``."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from registry.surveillance.cube import FLAT_DIMENSIONS, MEASURES, read_measures
from registry.surveillance.disclosure import DEFAULT_K, MIN_K
from registry.surveillance.service import FORMATS, SCOPES


class CommaList(fields.String):
    """A comma-separated list of known codes."""

    def __init__(self, choices: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = choices

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        items = tuple(p.strip() for p in text.split(",") if p.strip())
        unknown = [p for p in items if p not in self.choices]
        if unknown:
            raise ValidationError(
                f"unknown {', '.join(unknown)}; choose from {', '.join(self.choices)}"
            )
        if len(set(items)) != len(items):
            raise ValidationError("a value is repeated")
        return items


class MeasureList(fields.String):
    """A comma-separated list of measure codes, as given (a former spelling is read later)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            read_measures(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        return tuple(p.strip() for p in text.split(",") if p.strip())


class ExtractQuerySchema(Schema):
    """What to extract: periods, grouping, measures, threshold, format and scope."""

    granularity = fields.String(
        load_default="quarter", validate=validate.OneOf(["month", "quarter", "year"])
    )
    first = fields.String(
        data_key="from",
        required=True,
        validate=validate.Length(max=7),
        metadata={"description": "First period: 2026-03, 2026-Q1 or 2026"},
    )
    last = fields.String(
        data_key="to",
        validate=validate.Length(max=7),
        metadata={"description": "Last period (default: the first)"},
    )
    grouping = CommaList(
        FLAT_DIMENSIONS,
        data_key="group_by",
        load_default=(),
        metadata={"description": f"Comma list of {', '.join(FLAT_DIMENSIONS)}"},
    )
    measures = MeasureList(
        load_default=MEASURES,
        metadata={
            "description": (
                f"Comma list of {', '.join(MEASURES)} (default: all). The former spelling with "
                "underscores (hiv_confirmed) is still read; the answer then carries a "
                "Warning: 299 header naming the code to use"
            )
        },
    )
    k = fields.Integer(load_default=DEFAULT_K, validate=validate.Range(min=MIN_K, max=100))
    rounding = fields.Integer(validate=validate.Range(min=2, max=1000))
    format = fields.String(load_default="json", validate=validate.OneOf(list(FORMATS)))
    scope = fields.String(
        load_default="origin",
        validate=validate.OneOf(SCOPES),
        metadata={"description": "Whether the ministry's country is the origin or destination"},
    )
    country = fields.String(
        validate=validate.Regexp(r"^[A-Z]{2}$"),
        metadata={"description": "Administrators only: restrict to one country"},
    )
    org_unit = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,50}$"),
        metadata={"description": "DHIS2 organisation unit code (default: the country code)"},
    )

    @post_load
    def default_last(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data.setdefault("last", data["first"])
        return data
