"""What the benchmark scripts share: timing a call in-process."""

import statistics
import time


def median_ms(function, repeats: int = 15) -> float:
    """The median wall time of `function()` over `repeats` calls, in ms, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000
