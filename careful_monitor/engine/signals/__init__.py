"""Collapse signatures against the anchor. Each is a test: a p-value and an effect with a floor.

They follow the same `compare(reference, window) -> TestResult` protocol as `engine.comparisons` and take
part in the window's Benjamini-Hochberg family. `value` (the `statistic`) is what the dashboards
plot as `collapse_signal`.
"""
