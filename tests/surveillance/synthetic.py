"""The synthetic population generator, as the tests have always imported it."""

from registry.surveillance.synthetic import findings, population

__all__ = ["findings", "population"]
