"""Per-agent memory profile for the debug inspector (PRD §6.2), sampled on request with tracemalloc.

Why tracemalloc and not a deep-size walk (pympler's `asizeof`): our agents keep almost nothing between
calls — they read their windows from the orchestrator's shared ring (`snapshot.history`) and build
their arrays during the call — so the memory an agent costs is what its update allocates, which only
tracing allocations sees (numpy reports its buffers to tracemalloc too). A size walk of the agent
object would report a few hundred bytes whatever its window, or, following `context`, the whole
shared panel.

Tracing slows every allocation of the process, so it runs only while a sample is taken: `sample(agents,
calls)` wraps each agent's `analyze` for its next `calls` calls, starts tracemalloc if it
was off, and switches it off again when the last sampled call is done. Per call it records

- `peak` (bytes): the highest traced memory during the call above its level at the call's start — the
  call's working memory. Streaming calls run on the event loop's thread, one agent at a time; an
  allocation by another thread in that instant (the journal writer) would count too;
- `retained` (bytes): what the latest sampled call left allocated (traced memory after it minus before
  it): state it kept, e.g. a cache; negative when it freed more than it allocated.

A snapshot filtered by the agent's module would attribute each allocation exactly, but its cost grows
with everything traced meanwhile (seconds in the cockpit, whose rendering allocates all the time), so
the figures come from the tracing totals around each call instead.

An agent whose `analyze` hands back an awaitable (Claude) or runs in a thread is measured the same way
for the synchronous part only; its `samples` still count.
"""

from __future__ import annotations

import tracemalloc
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

FRAMES = 1  # totals only: no traceback is read, so the cheapest tracing


@dataclass
class MemoryStats:
    """What the sampled calls of one agent allocated (bytes)."""

    samples: int = 0
    peak_sum: int = 0
    peak_max: int = 0
    retained: int = 0  # left allocated by the latest sampled call
    pending: int = 0  # calls still to sample

    @property
    def peak_mean(self) -> float | None:
        return self.peak_sum / self.samples if self.samples else None


class AgentMemoryProfiler:
    """Samples the memory of the agents of one panel (see the module docstring)."""

    def __init__(self) -> None:
        self.stats: dict[str, MemoryStats] = {}
        self._tracing_ours = False
        self._active = 0  # agents with calls still to sample

    def sample(self, agents: Iterable[Any], calls: int) -> list[str]:
        """Measure the next `calls` calls (1-1000) of each agent; returns the ids now being sampled."""
        if not 1 <= calls <= 1000:
            raise ValueError(f"calls must be in [1, 1000], got {calls}")
        ids = []
        for agent in agents:
            st = self.stats.setdefault(agent.id, MemoryStats())
            if st.pending == 0:
                self._wrap(agent, st)
                self._active += 1
            st.pending = calls
            ids.append(agent.id)
        if ids and not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
            self._tracing_ours = True
        return ids

    def _wrap(self, agent: Any, st: MemoryStats) -> None:
        original: Callable[[Any], Any] = agent.analyze

        def measured(snapshot: Any) -> Any:
            tracing = tracemalloc.is_tracing()
            if tracing:
                tracemalloc.reset_peak()
                start = tracemalloc.get_traced_memory()[0]
            try:
                return original(snapshot)
            finally:
                if tracing:
                    current, peak = tracemalloc.get_traced_memory()
                    st.samples += 1
                    st.peak_sum += max(0, peak - start)
                    st.peak_max = max(st.peak_max, peak - start)
                    st.retained = current - start
                st.pending -= 1
                if st.pending <= 0:
                    st.pending = 0
                    del agent.analyze  # the class's method again
                    self._done()

        agent.analyze = measured

    def _done(self) -> None:
        self._active -= 1
        if self._active == 0 and self._tracing_ours:
            tracemalloc.stop()
            self._tracing_ours = False


_PROFILERS: weakref.WeakKeyDictionary[Any, AgentMemoryProfiler] = weakref.WeakKeyDictionary()


def profiler_for(panel: Any) -> AgentMemoryProfiler:
    """The one profiler of a panel (an Orchestrator), shared by the API and the cockpit's inspector."""
    prof = _PROFILERS.get(panel)
    if prof is None:
        prof = _PROFILERS[panel] = AgentMemoryProfiler()
    return prof
