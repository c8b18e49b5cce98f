"""How long tests wait for things that are not the behaviour under test, from one constant.

A loaded machine (CI, two cores, other suites) makes servers start and notifications arrive later; such waits
are bounded by `EVENTUALLY`, scaled by CAPGATE_TEST_TIME_SCALE (.ci/run sets it). Bounds that ARE the behaviour
under test (revocation within a second, a kill switch within a second) stay as the product promises them.
"""

from __future__ import annotations

import os

SCALE = float(os.environ.get("CAPGATE_TEST_TIME_SCALE", "1") or 1)
EVENTUALLY = 20.0 * SCALE
