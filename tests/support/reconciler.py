"""Waiting on the edge's host reconciler (`token_service.dispatch.reconciler`) in tests that put
its sweep far away (`reconcile_interval_s=600`), so each look is one the test caused."""

from __future__ import annotations

from tests.support.waiting import until
from token_service.dispatch.reconciler import HostReconciler

FAR_S = 60.0
"""A next wakeup this far off is the sweep: no look is due."""


async def look_done(reconciler: HostReconciler, what: str) -> None:
    """Until the look under way (the one at start, or one asked for) is done."""
    await until(
        lambda: reconciler.schedule.next_wakeup() > reconciler.clock() + FAR_S,
        10,
        what,
        interval=0.05,
    )


async def registration_looked(reconciler: HostReconciler) -> None:
    """A worker registered: the reconciler looks at every room; until that look is done."""
    reconciler.worker_registered()
    await look_done(reconciler, "the registration's look")
