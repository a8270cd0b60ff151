"""The words the portal's scripts show, translated on the server and handed to the page."""

from __future__ import annotations

from collections.abc import Callable


def N_(text: str) -> str:
    """Mark a word for the catalogue; it is translated when a page is made."""
    return text


MESSAGES = {
    "key_not_json": N_("The file is not a JSON key file."),
    "key_not_private": N_(
        "The file is not a private P-256 key (a JWK with kty EC, crv P-256 and d)."
    ),
    "no_token": N_("The registry gave no access token."),
    "no_client_id": N_("The key file does not name its client: type the client id."),
    "signing_key_unknown": N_("The signing key is not an active key registered to your clinic."),
    "signing_key_needed": N_(
        "Your clinic signs with its own key: choose the signing key file too."
    ),
    "signing_in": N_("Signing in…"),
    "signin_failed": N_("Could not sign in:"),
    "quota_none": N_("No annual quota is set for your clinic; {used} examinations in {year}."),
    "quota_used": N_("{used} of {limit} examinations used in {year}; {remaining} left."),
    "loading": N_("Loading…"),
    "status_final": N_("final"),
    "status_amended": N_("amended"),
    "status_entered-in-error": N_("withdrawn"),
    "found": N_("{shown} of {total} examinations shown."),
    "remove": N_("Remove"),
    "document_type": N_("Document {n}"),
    "issued_by": N_("Issued by"),
    "document_number": N_("Number"),
    "valid_until": N_("Valid until"),
    "referral_reason": N_("Reason"),
    "facility": N_("Programme facility (registry id)"),
    "one_of": N_("Test (one of)"),
    "result": N_("Result"),
    "test_date": N_("Date of the test"),
    "date_needed": N_("Enter a date."),
    "date_invalid": N_("This is not a date."),
    "date_future": N_("The date is in the future."),
    "exam_before_birth": N_("The examination is before the birth date."),
    "birth_too_old": N_("The birth date is more than 120 years ago."),
    "test_too_early": N_("The test is more than 90 days before the examination."),
    "test_too_late": N_("The test is more than 30 days after the examination."),
    "draft_not_saved": N_("The draft could not be saved in this browser."),
    "photo_unreadable": N_("The photo could not be read; choose a JPEG or PNG picture."),
    "camera_unavailable": N_("The camera is not available; choose a picture file instead."),
    "need_number": N_("Enter your clinic's examination number."),
    "need_exam_date": N_("Check the examination date."),
    "need_destination": N_("Choose the destination."),
    "need_physician": N_("Enter the physician's names and licence number."),
    "need_latin_name": N_("Enter the person's family and given names in Latin letters."),
    "need_sex": N_("Choose the person's sex."),
    "need_birth_date": N_("Check the birth date."),
    "need_document": N_("Enter at least one identity document with its number."),
    "need_results": N_("Enter the result of every test."),
    "need_test_dates": N_("Check the dates of the tests."),
    "need_consent": N_("The person's consent is required."),
    "need_facility": N_("A facility's registry id looks like TJ-AID-0001."),
    "need_worker": N_("Enter the worker's names, birth date and passport number."),
    "fix_first": N_("Correct the marked items, then submit again."),
    "submitting": N_("Submitting…"),
    "signing": N_("Signing with your clinic's key and submitting…"),
    "refused": N_("The registry did not accept the examination:"),
    "lookup_needs": N_("Enter the document number and the birth date."),
    "lookup_holds": N_(
        "This person already holds a valid certificate: {certificates}. "
        "No new examination is needed for it."
    ),
    "lookup_none": N_("No valid certificate found. You can start the examination."),
    "custodial_note": N_(
        "The registry signs this examination with the key it keeps for your clinic."
    ),
    "clinic_held_note": N_(
        "This examination is signed in this browser with your clinic's own key."
    ),
    "submit": N_("Submit"),
    "sign_and_submit": N_("Sign and submit"),
    "amend_title": N_("Amend the examination"),
    "draft_restored": N_("Your unfinished examination was restored."),
    "verdict_met": N_("requirements met, certificate {id}, valid until {until}"),
    "verdict_unmet": N_("requirements not met, no certificate"),
    "cert_valid": N_("valid"),
    "cert_revoked": N_("revoked"),
    "cert_superseded": N_("replaced"),
    "print_pdf": N_("Print the certificate (PDF)"),
    "show_qr": N_("Show the QR code"),
    "qr_alt": N_("QR code of certificate {id}"),
    "exam_title": N_("Examination {number}"),
    "person": N_("Person"),
    "date": N_("Date"),
    "destination": N_("Destination"),
    "status": N_("Status"),
    "version": N_("version {n}"),
    "no_certificates": N_("No certificate."),
    "reason_needed": N_("Give a reason of at least three characters."),
    "confirm_withdraw": N_("Withdraw this examination? Its certificates are revoked."),
    "withdrawn": N_("The examination is withdrawn and its certificates are revoked."),
    "referral_now": N_("The referral is now: {status}."),
    "referral_requested": N_("requested"),
    "referral_accepted": N_("accepted"),
    "referral_completed": N_("completed"),
    "referral_lost-to-follow-up": N_("lost to follow-up"),
    "referral_revoked": N_("revoked"),
    "referral_entered-in-error": N_("entered in error"),
    "referral_from": N_("from {clinic}, {day}"),
    "overdue": N_("overdue"),
    "mark_accepted": N_("Accepted"),
    "mark_completed": N_("Completed"),
    "mark_lost-to-follow-up": N_("Lost to follow-up"),
    "no_referrals": N_("No referrals."),
    "key_made": N_(
        "Key pair made (key id {kid}). Save the private key file now: it is not kept anywhere else."
    ),
}


def messages(gettext: Callable[[str], str]) -> dict[str, str]:
    """The scripts' words in the page's language."""
    return {key: gettext(text) for key, text in MESSAGES.items()}
