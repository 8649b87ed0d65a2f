"""Load test, reconciliation and benchmarks of the vote pipeline (developer tooling)."""
