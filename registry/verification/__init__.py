"""Verification: the public verify API, employer and holder pages, authority view, trust list."""
