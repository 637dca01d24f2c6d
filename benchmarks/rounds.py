"""Settings of a run, contenders alternated round by round, and medians."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Settings", "Summary", "alternate"]

MIB = 1024 * 1024


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
    import_runs: int = 7
    quick: bool = False

    def describe(self) -> str:
        kind = "quick (smoke test, not representative)" if self.quick else "full"
        return (
            f"{kind} run: {self.rounds} rounds, local file {self.big_size // MIB} MiB, "
            f"S3 object {self.s3_size // MIB} MiB, BytesIO {self.bytesio_size // MIB} MiB, "
            f"{self.concurrency} concurrent downloads, "
            f"{self.ping_count} pings, small-file runs of {self.small_seconds:g} s"
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


def alternate(
    contenders: Mapping[str, Callable[[], float]],
    rounds: int,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Summary]:
    """One warm-up call per contender, then ``rounds`` rounds; the start rotates every round."""
    names: Sequence[str] = list(contenders)
    for name in names:
        progress(f"warm-up {name}: {contenders[name]():.1f}")
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in [*names[shift:], *names[:shift]]:
            value = contenders[name]()
            results[name].append(value)
            progress(f"round {index + 1}/{rounds} {name}: {value:.1f}")
    return {name: Summary(tuple(values)) for name, values in results.items()}
