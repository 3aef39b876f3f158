"""Polling: each source on its own interval, one poll at a time, never holding up another.

APScheduler's asyncio scheduler runs one job per source with the source's interval and
jitter, ``max_instances=1`` and ``coalesce`` (a slow poll skips a beat rather than piling
up). Every poll is bounded by the source's timeout. A source that fails is logged once when
it starts failing and once when it recovers (not on every failure); every failure is
counted in ``risingtide_poll_errors_total{source,reason}``. A platform that answers with
``Retry-After`` (429, 503) is not polled again until that wait is over (at most 10
minutes); its lines hold their last figures and go stale as usual meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from risingtide.config.model import SourceConfig
from risingtide.domain.model import QueueStats
from risingtide.metrics import Metrics
from risingtide.ports import SourceError, StatsSource

log = structlog.get_logger(__name__)

#: Called with (source id, stats by line, errors by line) after every poll.
ResultSink = Callable[[str, Mapping[str, QueueStats], Mapping[str, SourceError]], None]


class Poller:
    """Schedules and runs the polls of every source."""

    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        metrics: Metrics,
        sink: ResultSink,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Poll on ``scheduler``; hand every result to ``sink``; ``monotonic`` is for tests."""
        self._scheduler = scheduler
        self._metrics = metrics
        self._sink = sink
        self._monotonic = monotonic
        self._sources: dict[str, tuple[SourceConfig, StatsSource]] = {}
        self._failing: set[str] = set()
        self._failing_lines: set[str] = set()
        #: Sources whose platform asked us to wait (Retry-After), until when (monotonic).
        self._held_until: dict[str, float] = {}

    def schedule(self, sources: Mapping[str, tuple[SourceConfig, StatsSource]]) -> None:
        """(Re)schedule one job per source, replacing any from an earlier config."""
        for old in set(self._sources) - set(sources):
            job = self._scheduler.get_job(_job_id(old))
            if job is not None:
                job.remove()
        self._sources = dict(sources)
        for sid, (cfg, _source) in sources.items():
            self._scheduler.add_job(
                self.poll,
                "interval",
                args=[sid],
                id=_job_id(sid),
                replace_existing=True,
                seconds=cfg.interval.total_seconds(),
                jitter=cfg.jitter.total_seconds() or None,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                # The first poll runs at once so a fresh daemon shows figures straight away.
                next_run_time=datetime.now(UTC),
            )

    async def poll(self, source_id: str) -> None:
        """Poll one source once, within its timeout; never raises."""
        entry = self._sources.get(source_id)
        if entry is None:
            return
        cfg, source = entry
        if self._held(source_id):
            return  # the platform asked us to wait; its lines hold their last figures
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(source.poll(), cfg.timeout.total_seconds())
        except TimeoutError:
            self._failed(source_id, SourceError("poll timed out", reason="timeout"))
            return
        except SourceError as exc:
            self._failed(source_id, exc)
            return
        except Exception as exc:  # a broken adapter must not stop the others
            log.exception("source raised an unclassified error", source=source_id)
            self._failed(source_id, SourceError(str(exc) or type(exc).__name__, reason="error"))
            return
        finally:
            self._metrics.poll_duration.labels(source=source_id).observe(
                time.perf_counter() - started
            )
        if source_id in self._failing:
            self._failing.discard(source_id)
            log.info("source recovered", source=source_id)
        stats: dict[str, QueueStats] = {}
        errors: dict[str, SourceError] = {}
        for line, item in result.items():
            if isinstance(item, SourceError):
                errors[line] = item
                self._metrics.poll_errors.labels(source=source_id, reason=item.reason).inc()
                if line not in self._failing_lines:
                    self._failing_lines.add(line)
                    log.warning(
                        "line stats failing", source=source_id, line=line, error=str(item),
                        reason=item.reason,
                    )  # fmt: skip
            else:
                stats[line] = item
                if line in self._failing_lines:
                    self._failing_lines.discard(line)
                    log.info("line stats recovered", source=source_id, line=line)
        self._sink(source_id, stats, errors)

    def _held(self, source_id: str) -> bool:
        """True while the source's ``Retry-After`` wait lasts."""
        until = self._held_until.get(source_id)
        if until is None:
            return False
        if self._monotonic() < until:
            return True
        del self._held_until[source_id]
        return False

    def _hold(self, source_id: str, error: SourceError) -> None:
        """Honour the platform's ``Retry-After``: no poll of the source until it is over."""
        wait = _retry_after(error)
        if wait is None or wait <= 0:
            return
        wait = min(wait, MAX_HOLD_SECONDS)
        self._held_until[source_id] = self._monotonic() + wait
        log.warning(
            "source asked us to wait; holding its polls", source=source_id, wait=wait,
            reason=error.reason,
        )  # fmt: skip

    def _failed(self, source_id: str, error: SourceError) -> None:
        self._hold(source_id, error)
        self._metrics.poll_errors.labels(source=source_id, reason=error.reason).inc()
        if source_id not in self._failing:
            self._failing.add(source_id)
            log.warning(
                "source failing; its lines hold their tiers",
                source=source_id, error=str(error), reason=error.reason,
                retryable=error.retryable,
            )  # fmt: skip
        self._sink(source_id, {}, {"*": error})


#: The longest a ``Retry-After`` holds a source's polls: beyond this a platform's date is
#: more likely a clock error than a request, and the lines would go stale unseen.
MAX_HOLD_SECONDS = 600.0


def _retry_after(error: BaseException) -> float | None:
    """The ``retry_after`` of ``error`` or of an error it wraps (``raise … from``)."""
    seen: BaseException | None = error
    for _ in range(10):  # a cause chain is short; bounded all the same
        if seen is None:
            return None
        wait = getattr(seen, "retry_after", None)
        if isinstance(wait, int | float):
            return float(wait)
        seen = seen.__cause__
    return None


def _job_id(source_id: str) -> str:
    return f"poll:{source_id}"
