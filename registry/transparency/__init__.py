"""The transparency log: an append-only Merkle tree of everything that matters (docs/transparency.md)."""
