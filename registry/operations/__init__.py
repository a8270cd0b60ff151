"""Operational endpoints: health, readiness and the registry's published keys."""
