"""Bad input gives a clear error naming the op and the shapes, pointing at the user's line."""

import traceback

import pytest

import minaot

pytestmark = pytest.mark.tensor


def _raise(fn):
    with pytest.raises(Exception) as info:
        fn()
    return info


def test_add_shape_mismatch_names_op_shapes_and_line():
    a, b = minaot.ones(3, 4), minaot.ones(5)
    info = _raise(lambda: a + b)   # THIS LINE
    msg = str(info.value)
    assert "add" in msg and "(3, 4)" in msg and "(5,)" in msg
    assert "test_errors.py" in msg and "THIS LINE" in msg
    frames = traceback.extract_tb(info.tb)
    assert any(f.filename.endswith("test_errors.py") and "THIS LINE" in f.line for f in frames)


def test_matmul_shape_mismatch():
    msg = str(_raise(lambda: minaot.ones(3, 4) @ minaot.ones(5, 6)).value)
    assert "matmul" in msg and "(3, 4)" in msg and "(5, 6)" in msg and "4 != 5" in msg
    assert "test_errors.py" in msg


def test_unknown_dtype():
    with pytest.raises(TypeError, match="unknown dtype 'float16'"):
        minaot.ones(2, dtype="float16")


def test_backward_on_nonscalar():
    x = minaot.ones(3, requires_grad=True)
    msg = str(_raise(lambda: (x * 2).backward()).value)
    assert "backward" in msg and "(3,)" in msg and "test_errors.py" in msg


def test_backward_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        minaot.ones(1).sum().backward()


def test_inplace_on_leaf_names_op_and_line():
    w = minaot.ones(2, 2, requires_grad=True)
    msg = str(_raise(lambda: w.mul_(2)).value)
    assert "mul_" in msg and "(2, 2)" in msg and "test_errors.py" in msg


def test_reshape_and_view_errors():
    with pytest.raises(ValueError, match=r"shape \(5,\) is invalid for input of size 6"):
        minaot.ones(2, 3).reshape(5)
    with pytest.raises(ValueError, match="expanded size"):
        minaot.ones(2, 3).expand(4, 3)


def test_dim_out_of_range():
    with pytest.raises(IndexError, match=r"dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        minaot.ones(2, 3).sum(2)


def test_index_errors():
    with pytest.raises(IndexError, match="out of bounds"):
        minaot.ones(3)[5]
    with pytest.raises(IndexError, match="too many indices"):
        minaot.ones(3)[0, 0]


def test_cat_mismatch():
    msg = str(_raise(lambda: minaot.cat([minaot.ones(2, 3), minaot.ones(2, 4)])).value)
    assert "cat" in msg and "(2, 3)" in msg and "(2, 4)" in msg


def test_write_through_expanded_view_names_op_shapes_and_line():
    """A compiled in-place write that functionalization cannot replay names the
    op, its operand shapes and the user's line (eager runs it; the compiled call
    refuses rather than return a wrong answer)."""
    from minaot.passes.functionalize import FunctionalizeError

    def f(x):
        x.expand(3, 4)[0].add_(1)   # the line the error must point at
        return x * 2

    with pytest.raises(FunctionalizeError) as info:
        minaot.compile(f, backend="numpy")(minaot.ones(4))
    text = str(info.value)
    assert "add_(tensor<4xf32>" in text and "expanded view" in text
    assert "test_errors.py" in text and "the line the error must point at" in text
