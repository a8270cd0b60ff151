"""Cross-border medical examination registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from registry.config import Settings
from registry.crypto.encryption import DataCipher
from registry.crypto.keystore import KeyStore
from registry.db import Database

__all__ = ["create_app"]


def create_app(config: dict[str, Any] | None = None, *, create_keys: bool = False) -> Flask:
    """Application factory: settings, database, keys, extensions, blueprints.

    Keys are created only when asked (``registry init``): a server that found its keys folder
    empty and made its own would sign with keys no other replica knows.
    """
    from registry import logs, web
    from registry.extensions import limiter, retry_after_on_429
    from registry.operations.metrics import init_http_metrics
    from registry.subscriptions import message_bus
    from registry.verification.endpoint import VerifyRoute

    app = Flask(__name__, instance_relative_config=True)
    settings = Settings.from_env(Path(app.instance_path), **(config or {}))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    keystore = KeyStore(settings.keys_dir, refresh_seconds=settings.key_refresh_seconds)
    if create_keys:
        keystore.ensure()
    data_keys = settings.data_keys or (keystore.secret("data"),)
    db = Database(settings.database_url, pool_size=settings.db_pool_size, bus=message_bus())
    registry = web.RegistryContext(
        settings=settings,
        db=db,
        keystore=keystore,
        cipher=DataCipher(data_keys),
        index_key=settings.index_key or keystore.secret("index"),
    )
    db.context = registry  # every unit of work carries it
    keystore.attach(db)  # key statuses live in the database; read lazily, never at start
    app.extensions["registry"] = registry
    app.json = web.LimitedJSONProvider(app)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="Cross-border medical examination registry",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/static/vendor/swagger-ui/",
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage,
        JSON_SORT_KEYS=False,
    )
    logs.configure()
    api = web.RegistryApi(app)
    app.after_request(web.keep_retry_after)  # before the limiter's own: runs after it
    app.after_request(retry_after_on_429)
    limiter.init_app(app)
    app.extensions["registry.metrics"] = init_http_metrics(app)
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    _register_blueprints(api)
    from registry.clinic_portal import pages as clinic_portal_pages
    from registry.examinations import fhir_views as examination_fhir_views
    from registry.fhir import views as fhir_views
    from registry.operations import views as operations_views
    from registry.surveillance import pages as surveillance_pages
    from registry.transparency import views as log_views
    from registry.verification import pages as verification_pages

    # HTML, /metrics and FHIR REST: plain Flask blueprints, documented by hand in the API
    # document (so the contract tests reach them too)
    for blueprint, paths in (
        (operations_views.pages, operations_views.OPENAPI_PATHS),
        (verification_pages.blp, verification_pages.OPENAPI_PATHS),
        (surveillance_pages.blp, surveillance_pages.OPENAPI_PATHS),
        (clinic_portal_pages.blp, clinic_portal_pages.OPENAPI_PATHS),
        (fhir_views.blp, fhir_views.OPENAPI_PATHS),
        (examination_fhir_views.blp, examination_fhir_views.OPENAPI_PATHS),
        (log_views.blp, log_views.OPENAPI_PATHS),
    ):
        app.register_blueprint(blueprint)
        web.document_paths(app, api, paths)
    web.init_app(app)  # after the Api, so our handlers replace flask-smorest's
    # the busiest route in front of the stack, which answers the rest (and documents it)
    app.wsgi_app = VerifyRoute(  # type: ignore[method-assign]
        app, app.wsgi_app, metrics=app.extensions["registry.metrics"]
    )
    if settings.proxy_hops:
        # the rate limiter and logs must see the client's address, not the proxy's
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app


def _register_blueprints(api: Any) -> None:
    from registry.accreditation.views import blp as clinics
    from registry.auth.views import blp as auth
    from registry.certificates.views import blp as certificates
    from registry.certificates.views import crl_blp as revocation_lists
    from registry.certificates.views import rulesets_blp as rulesets
    from registry.examinations.views import blp as examinations
    from registry.examinations.views import persons_blp as persons
    from registry.fraud.views import blp as fraud
    from registry.operations.views import blp as operations
    from registry.referrals.views import blp as referrals
    from registry.surveillance.views import blp as surveillance
    from registry.verification.views import blp as verification

    for blueprint in (
        operations,
        auth,
        clinics,
        examinations,
        persons,
        referrals,
        fraud,
        rulesets,
        certificates,
        revocation_lists,
        verification,
        surveillance,
    ):
        api.register_blueprint(blueprint)
