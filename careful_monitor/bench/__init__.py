"""`careful-monitor bench`: experiments beside the peers, every figure from the run that prints it.

- `speed`: the daemon window vs scipy and the numpy floor, the categorical window vs codes + chi-square,
  replay vs orjson (interleaved rounds), memory soak, profile size (the default);
- `growth`: the cost-growth table, one axis at a time (--growth);
- `quality`: detection delay and false alarms vs river, and the window-level experiments (--quality);
- `kafka`: each Kafka runtime's events/s on one broker, beside replay and the bare client (--kafka);
- `workload`: the seeded events and the store + pipeline (from `careful_monitor.app`) they share.
"""
