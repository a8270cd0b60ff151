"""Clients, the OAuth token endpoint, principals and the one permission check."""
