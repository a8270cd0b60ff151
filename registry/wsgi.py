"""WSGI entry point: ``gunicorn registry.wsgi:app``."""

from registry import create_app

app = create_app()

__all__ = ["app", "create_app"]
