"""The transparency log: an append-only Merkle tree of what matters (docs/transparency.md)."""
