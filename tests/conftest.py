"""Shared test set-up: one hypothesis profile (no deadline: first calls compile)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "minaot", deadline=None, max_examples=int(os.environ.get("MINAOT_HYPOTHESIS_EXAMPLES", 60)),
    suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("minaot")
