"""`python -m humiao_dev.bench` (`make bench`): throughput, latency and memory of the real
services against the limit of this machine, measured in one run so the figures can be
compared as ratios (DESIGN.md section 7, issue 7). Writes bench-results.json."""
