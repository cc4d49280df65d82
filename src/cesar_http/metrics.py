"""Prometheus metrics in the text exposition format, without a client library.

Job counts by state come from the store (they are the same on every node); job durations
and audio seconds are what this process's embedded worker ran.
"""

from __future__ import annotations

import bisect

from cesar_core.jobs import Job, JobState

#: Seconds; transcriptions range from a second to hours.
BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, float("inf"))


class Metrics:
    """A histogram of job durations and a counter of audio seconds."""

    def __init__(self) -> None:
        self.bucket_counts = [0] * len(BUCKETS)
        self.duration_sum = 0.0
        self.duration_count = 0
        self.audio_seconds = 0.0
        self.finished: dict[JobState, int] = dict.fromkeys(JobState, 0)

    async def observe(self, job: Job) -> None:
        """Record a job this process's worker finished (the worker's ``on_finished``)."""
        self.finished[job.state] += 1
        if job.state is not JobState.COMPLETED or job.started_at is None:
            return
        if job.completed_at is not None:
            seconds = (job.completed_at - job.started_at).total_seconds()
            self.bucket_counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.duration_sum += seconds
            self.duration_count += 1
        if job.result is not None:
            self.audio_seconds += job.result.duration

    def render(self, counts: dict[JobState, int]) -> str:
        """The exposition text, with the store's job ``counts``."""
        lines = [
            "# HELP cesar_jobs Jobs in the store, by state.",
            "# TYPE cesar_jobs gauge",
            *(f'cesar_jobs{{state="{state.value}"}} {n}' for state, n in counts.items()),
            "# HELP cesar_queue_depth Jobs waiting for a worker.",
            "# TYPE cesar_queue_depth gauge",
            f"cesar_queue_depth {counts.get(JobState.QUEUED, 0)}",
            "# HELP cesar_jobs_finished_total Jobs this server's worker finished, by state.",
            "# TYPE cesar_jobs_finished_total counter",
            *(
                f'cesar_jobs_finished_total{{state="{state.value}"}} {n}'
                for state, n in self.finished.items()
                if state.terminal
            ),
            "# HELP cesar_job_duration_seconds Time from claim to completion of a job.",
            "# TYPE cesar_job_duration_seconds histogram",
        ]
        running = 0
        for bound, count in zip(BUCKETS, self.bucket_counts, strict=True):
            running += count
            label = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'cesar_job_duration_seconds_bucket{{le="{label}"}} {running}')
        lines += [
            f"cesar_job_duration_seconds_sum {self.duration_sum}",
            f"cesar_job_duration_seconds_count {self.duration_count}",
            "# HELP cesar_audio_seconds_total Seconds of audio this server's worker transcribed.",
            "# TYPE cesar_audio_seconds_total counter",
            f"cesar_audio_seconds_total {self.audio_seconds}",
        ]
        return "\n".join(lines) + "\n"
