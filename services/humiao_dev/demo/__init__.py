"""The synthetic city demo: a seeded city with ground truth, fed through the real stack.

`city` builds the city (pure domain), `scoring` compares raised alerts with the
truth, `__main__` (`python -m humiao_dev.demo`) runs it end to end.
"""
