"""Code generation: loop IR -> Python source for Numba, and the on-disk kernel cache."""
