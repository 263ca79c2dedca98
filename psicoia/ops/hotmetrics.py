"""
Counters and histograms for the per-message path, exposed exactly as prometheus_client's.

prometheus_client's ``Counter`` and ``Histogram`` take a lock on every ``inc``/``observe`` and
check observability first: about 1.1 us per observation and 0.4 us per increment on this
machine, and a message makes six observations and five increments (bench/analysis.md). Every
caller here runs on the reactor thread, and ``/metrics`` is rendered there too, so these keep
plain numbers and build the same metric families (``CounterMetricFamily``,
``HistogramMetricFamily``: same names, labels, ``le`` buckets and ``+Inf``) when scraped.
Use them only for metrics updated from the reactor thread.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterator, Optional, Sequence

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

INF = float("inf")


class _CountChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (>= 0, as prometheus_client requires of a counter)."""
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose upper bound is >= it (``le``)."""
        self.sum += amount
        self.counts[bisect_left(self.bounds, amount)] += 1


class _Hot(Collector):
    """What the counter and the histogram share: a name, labels, children by label values."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: Optional[CollectorRegistry] = None) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple, object] = {}
        if not self.labelnames:
            self._children[()] = self._new()
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> object:
        """The child for these label values (made on first use), as prometheus_client's."""
        if len(values) != len(self.labelnames):
            raise ValueError("Incorrect label count")
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new()
        return child

    def _new(self) -> object:
        raise NotImplementedError

    def describe(self) -> list:
        return [self._family()]

    def _family(self):
        raise NotImplementedError


class HotCounter(_Hot):
    """A counter (exposed as ``<name>_total``); ``inc`` on an unlabelled one, else
    ``labels(...).inc``."""

    def _new(self) -> _CountChild:
        return _CountChild()

    def inc(self, amount: float = 1) -> None:
        self._children[()].inc(amount)

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        for key, child in self._children.items():
            family.add_metric(list(key), child.value)
        yield family


class HotHistogram(_Hot):
    """A histogram with fixed ``buckets`` (upper bounds, seconds or any unit; ``+Inf``
    added; prometheus_client's defaults if none); ``observe`` on an unlabelled one, else
    ``labels(...).observe``."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = (), registry: Optional[CollectorRegistry] = None
                 ) -> None:
        bounds = sorted(float(bound) for bound in buckets or Histogram.DEFAULT_BUCKETS)
        if not bounds or bounds[-1] != INF:
            bounds.append(INF)
        self.bounds = tuple(bounds)
        super().__init__(name, documentation, labelnames, registry)

    def _new(self) -> _HistogramChild:
        return _HistogramChild(self.bounds)

    def observe(self, amount: float) -> None:
        self._children[()].observe(amount)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = self._family()
        for key, child in self._children.items():
            running, buckets = 0, []
            for bound, count in zip(self.bounds, child.counts):
                running += count
                buckets.append((floatToGoString(bound), running))
            family.add_metric(list(key), buckets, child.sum)
        yield family
