"""Referrals to origin-country TB and HIV programmes and their completion."""
