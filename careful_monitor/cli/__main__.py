"""`python -m careful_monitor.cli`: the same as the `careful-monitor` script."""

from careful_monitor.cli import main

main()
