"""The API document says which operations take a bearer token, and which are open to anyone."""

from __future__ import annotations

from flask import Flask

OPEN = {
    ("get", "/.well-known/crl/{kid}.json"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/registry-keys.json"),
    ("get", "/api/v1/clinics"),
    ("get", "/api/v1/clinics/{clinic_id}"),
    ("get", "/api/v1/rulesets"),
    ("get", "/api/v1/rulesets/{destination}"),
    ("get", "/api/v1/trust-list"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/oauth/token"),  # the client authenticates with its signed assertion instead
    # pages and FHIR conformance reads (documented by hand)
    ("get", "/verify"),
    ("get", "/h/{secret}"),  # the secret in the link is the credential
    ("get", "/h"),  # a holder without the slip: number, birth date and recovery code instead
    ("post", "/h"),
    ("get", "/verify/manifest.webmanifest"),
    ("get", "/verify/sw.js"),
    ("get", "/verify/receipt"),
    ("post", "/verify/receipt"),  # the receipt's own signature is what is checked
    ("get", "/surveillance"),  # the page asks for the ministry's token itself
    # the clinic portal's pages ask for the clinic's token themselves; the catalogue is public
    ("get", "/clinic"),
    ("get", "/clinic/examinations/new"),
    ("get", "/clinic/examinations/{examination_id}"),
    ("get", "/clinic/referrals"),
    ("get", "/clinic/keys"),
    ("get", "/clinic/catalogue.json"),
    ("get", "/metrics"),  # scraped inside the deployment; nginx keeps it from the internet
    ("get", "/fhir/metadata"),
    ("get", "/fhir/{resource_type}"),
    ("get", "/fhir/{resource_type}/{resource_id}"),
    # the transparency log is public; a cosignature authenticates itself (a registered witness)
    ("get", "/log/checkpoint"),
    ("get", "/log/key"),
    ("get", "/log/tile/{rest}"),
    ("get", "/log/proof/inclusion"),
    ("get", "/log/proof/consistency"),
    ("get", "/log/entries/{index}"),
    ("post", "/log/cosignatures"),
}
TOKEN_OR_ANYONE = {  # a bearer token, or nothing (holder link, anonymous verification)
    ("post", "/api/v1/verify"),
    ("get", "/api/v1/certificates/{certificate_id}"),
    ("get", "/api/v1/certificates/{certificate_id}/card.smart-health-card"),
    ("get", "/api/v1/certificates/{certificate_id}/certificate.pdf"),
    ("get", "/api/v1/certificates/{certificate_id}/holder-slip.pdf"),
    ("get", "/api/v1/certificates/{certificate_id}/qr.png"),
    ("get", "/api/v1/certificates/{certificate_id}/qr.svg"),
    ("post", "/verify"),
    ("get", "/verify/photo/{token}"),
}


def test_every_operation_states_whether_it_needs_a_bearer_token(app: Flask) -> None:
    spec = app.test_client().get("/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            security = operation.get("security")
            if (method, path) in OPEN:
                assert security is None, (method, path)
            elif (method, path) in TOKEN_OR_ANYONE:
                assert security == [{"bearer": []}, {}], (method, path)
            else:
                assert security == [{"bearer": []}], (method, path)
