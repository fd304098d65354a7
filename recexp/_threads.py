"""Thread policy for BLAS (numpy's and scipy's OpenBLAS pools), in one place."""

from __future__ import annotations

from typing import Any


def one_blas_thread() -> Any:
    """A context manager that limits BLAS to one thread while it is open (threadpoolctl).

    Used where BLAS threads cost more than they bring on small products or vector
    operations: evaluation's per-batch scoring (OpenBLAS's idle thread spins after each
    product and is charged to the process), L-BFGS's level-1 calls, and ``implicit``, which
    runs a thread pool of its own (a threaded BLAS underneath oversubscribes the cores and
    makes its Gram products order-dependent).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")
