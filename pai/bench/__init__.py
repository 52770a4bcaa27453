"""Benchmarks that print figures (never timed tests): ``python -m pai.bench {train,prune,metrics,dst,threads,all}``."""
