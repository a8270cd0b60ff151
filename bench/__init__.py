"""Side-by-side benchmarks of SPEC §12: ratios measured in one run on one machine."""
