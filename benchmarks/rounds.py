"""Settings of a run, contenders alternated round by round, and medians.

A contender is a callable that measures once and returns a :data:`Sample`: named figures
(``{"MB/s": 1034.2, "CPU s/GiB": 0.41}``). :func:`alternate` calls every contender once per
round, starting each round one contender further, and gives each figure of each contender a
:class:`Summary` of its rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Results", "Sample", "Settings", "Summary", "alternate"]

MIB = 1024 * 1024

#: One measurement of one contender: figure name -> value.
Sample = dict[str, float]
#: Every contender's figures over the rounds: contender -> figure name -> summary.
Results = dict[str, dict[str, "Summary"]]


@dataclass(frozen=True)
class Settings:
    """What one run measures, and how long it may take."""

    rounds: int
    big_size: int
    s3_size: int
    small_seconds: float
    ping_count: int
    bytesio_size: int = 200 * MIB
    concurrency: int = 8
    #: Fresh interpreters per contender of the import comparison.
    import_rounds: int = 21
    #: Downloads behind one figure of the offload section (its CPU is a few ms each).
    offload_downloads: int = 8
    quick: bool = False

    def describe(self) -> str:
        kind = "quick (smoke test, not representative)" if self.quick else "full"
        return (
            f"{kind} run: {self.rounds} rounds, local file {self.big_size // MIB} MiB, "
            f"S3 object {self.s3_size // MIB} MiB, BytesIO {self.bytesio_size // MIB} MiB, "
            f"{self.concurrency} concurrent downloads, {self.ping_count} pings, small-file runs"
            f" of {self.small_seconds:g} s, {self.offload_downloads} downloads per offload"
            f" figure, {self.import_rounds} interpreters per import figure"
        )


@dataclass(frozen=True)
class Summary:
    """The median of a contender's rounds, with the extremes."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, unit: str, digits: int = 0) -> str:
        low, high = min(self.values), max(self.values)
        return f"{self.median:.{digits}f} {unit} ({low:.{digits}f}-{high:.{digits}f})"

    def ratio(self, other: Summary) -> float:
        """The median of the per-round ratios against ``other``, measured in the same rounds.

        Contenders of one round run back to back, so a round's ratio cancels what drifts
        between rounds (another process, the page cache, moto's garbage collection), which a
        ratio of the two medians does not.
        """
        pairs = [
            mine / theirs for mine, theirs in zip(self.values, other.values, strict=True) if theirs
        ]
        return statistics.median(pairs) if pairs else float("nan")


def _show(sample: Sample) -> str:
    return ", ".join(f"{value:.2f} {name}" for name, value in sample.items())


def alternate(
    contenders: Mapping[str, Callable[[], Sample]],
    rounds: int,
    progress: Callable[[str], None] = lambda _: None,
    *,
    warm_up: bool = True,
) -> Results:
    """``rounds`` rounds of every contender; the start rotates every round.

    With ``warm_up``, every contender is called once first and that call is not kept (the
    contenders that start a fresh server each time warm it up themselves).
    """
    names: Sequence[str] = list(contenders)
    if warm_up:
        for name in names:
            progress(f"warm-up {name}: {_show(contenders[name]())}")
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in [*names[shift:], *names[:shift]]:
            sample = contenders[name]()
            samples[name].append(sample)
            progress(f"round {index + 1}/{rounds} {name}: {_show(sample)}")
    return {
        name: {figure: Summary(tuple(sample[figure] for sample in kept)) for figure in kept[0]}
        for name, kept in samples.items()
    }
