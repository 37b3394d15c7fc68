"""leat-async's benchmark harness: ``python -m benchmarks`` (see ``benchmarks/README.md``).

Not tests: nothing here asserts on speed. Each scenario prints a table of medians and ratios,
our client next to baselines measured in the same run against a fake server in another process.
"""
