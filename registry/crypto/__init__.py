"""Keys, JWS, canonical JSON, encryption at rest, blind indexes: all crypto of the project."""
