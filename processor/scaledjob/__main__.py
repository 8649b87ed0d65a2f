"""`python -m processor.scaledjob keda/scaledjob.yaml`: KEDA's ScaledJob loop on one machine."""

from __future__ import annotations

import sys

from processor.scaledjob.runner import main

sys.exit(main())
