"""`careful-monitor bench`: speed, cost growth, detection quality or Kafka throughput (see careful_monitor.bench)."""

from __future__ import annotations

import click
import orjson

from careful_monitor.cli.common import example, handle_errors


@click.command("bench", epilog=example("careful-monitor bench --growth --quick --json"))
@click.option("--quality", is_flag=True, help="Detection quality instead of speed: delays and false alarms vs river.")
@click.option("--growth", is_flag=True,
              help="Cost growth: ms per window and µs per event as references (1-10), features (20-500), window "
                   "size (1k-100k) and models per worker (1-100) grow, and persist per batch "
                   "(e.g. `careful-monitor bench --growth --quick`).")
@click.option("--kafka", "kafka", is_flag=True,
              help="Kafka throughput: each runtime, replay and the bare client loop on one broker.")
@click.option("--bootstrap", default=None,
              help="With --kafka: use this broker instead of starting deploy/kafka/broker.sh.")
@click.option("--peers", is_flag=True,
              help="The daemon window beside Evidently and nannyml in their own venvs (`make bench-peers` first).")
@click.option("--quick", is_flag=True, help="Smaller workloads (for a smoke run).")
@click.option("--memory", "memory_events", type=int, default=0,
              help="Also run the memory soak over this many events (e.g. 5000000).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@handle_errors
def bench(quality: bool, growth: bool, kafka: bool, bootstrap: str | None, peers: bool, quick: bool,
          memory_events: int, as_json: bool) -> None:
    """Benchmarks side by side with their baselines in one run.

    Speed (default): in interleaved rounds, the daemon window vs scipy's KS loop and the numpy floor, the
    categorical window vs strings->codes + chi-square, replay vs orjson; text replay, MMD, profile size,
    memory; each ratio beside its target (docs/benchmarks.md).

    --growth: the cost-growth table, one axis at a time from the base workload.

    --quality: detection delay and false alarms on seeded streams, beside river's detectors.

    --peers: the daemon window beside Evidently's and nannyml's window drift, with ratios.
    """
    from careful_monitor.bench.workload import quiet_logs

    echo = None if as_json else click.echo
    with quiet_logs():  # one INFO line per closed window would drown the tables
        if quality:
            from careful_monitor.bench.quality import run_quality

            results = run_quality(quick=quick, echo=echo)
        elif growth:
            from careful_monitor.bench.growth import run_growth

            results = run_growth(quick=quick, echo=echo)
        elif kafka:
            from careful_monitor.bench.kafka import run_kafka

            results = run_kafka(quick=quick, bootstrap=bootstrap, echo=echo)
        elif peers:
            from careful_monitor.bench.peers import run_peers

            results = run_peers(quick=quick, echo=echo)
        else:
            from careful_monitor.bench.speed import run_bench

            results = run_bench(quick=quick, memory_events=memory_events, echo=echo)
    if as_json:
        click.echo(orjson.dumps(results).decode())
