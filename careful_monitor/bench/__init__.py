"""`careful-monitor bench`: experiments beside the peers, every figure from the run that prints it.

- `speed`: window scoring vs scipy, replay throughput, memory soak, profile size (the default);
- `quality`: detection delay and false alarms vs river, and the window-level experiments (--quality);
- `kafka`: each Kafka runtime's events/s on one broker, beside replay and the bare client (--kafka);
- `workload`: the seeded events and the store + pipeline (from `careful_monitor.app`) they share.
"""
