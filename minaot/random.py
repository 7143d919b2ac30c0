"""Random numbers: a seedable default generator, like ``torch.manual_seed``.

A :class:`Generator` wraps numpy's PCG64.  Random ops (``rand``, ``randn``,
dropout's mask) draw from the default generator in program order, so a
compiled function that runs its random ops in the same order as eager gives
the same numbers for the same seed.
"""

from __future__ import annotations

import numpy as np


class Generator:
    """A seedable source of random numbers (numpy's PCG64), like ``torch.Generator``.

    ``rand`` and ``randn`` draw from the default generator unless given one
    (``generator=``), dropout's mask always from the default one;
    ``get_state``/``set_state`` save and restore a generator's position."""

    def __init__(self, device="cpu"):
        self._seed = 0
        self._rng = np.random.Generator(np.random.PCG64(0))

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        return self._rng.bit_generator.state

    def set_state(self, state):
        self._rng.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (``torch.manual_seed``); returns it."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    """The seed the default generator was last seeded with."""
    return default_generator.initial_seed()


def _gen(generator) -> np.random.Generator:
    return (generator or default_generator)._rng
