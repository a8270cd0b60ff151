"""Jurisdictions, accredited clinics with their status history, and their signing keys."""
