"""Shared test set-up: one hypothesis profile (no deadline: first calls compile)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "minaot", deadline=None, max_examples=int(os.environ.get("MINAOT_HYPOTHESIS_EXAMPLES", 60)),
    suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("minaot")

# Generated kernels go to a cache inside the checkout (fresh in a clean clone, reused
# by later local runs); tests of the cache itself use their own temporary directories.
os.environ.setdefault("MINAOT_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), ".pytest_cache", "minaot-kernels"))
