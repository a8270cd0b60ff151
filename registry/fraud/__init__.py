"""Signals for accreditors: patterns that suggest sold results or borrowed identities."""
