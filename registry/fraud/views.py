"""``/api/v1/fraud/signals``: leads for accreditors."""

from __future__ import annotations

from typing import Any

from registry.fraud import service
from registry.fraud.schemas import SignalQuerySchema, SignalsSchema
from registry.web import Blueprint, as_caller, authenticated

blp = Blueprint(
    "fraud",
    __name__,
    url_prefix="/api/v1/fraud",
    description="Fraud signals for accreditors: divergent verdicts and outlier clinics",
)


@blp.route("/signals", methods=["GET"])
@authenticated(action="fraud.read")
@blp.arguments(SignalQuerySchema, location="query")
@blp.response(200, SignalsSchema)
def signals(query: dict[str, Any]) -> Any:
    """Divergent verdicts and clinics whose fit rate departs from their peers'; audited."""
    return as_caller(
        service.fraud_signals,
        country=query.get("country"),
        since=query.get("since"),
        until=query.get("until"),
        window_days=query["window_days"],
        min_examinations=query["min_examinations"],
        z_threshold=query["z"],
    )
