"""Where the repository's files are, for tests that read manifests, the chart or the Dockerfile."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCALEDJOB = ROOT / "keda" / "scaledjob.yaml"
