"""Commands that need the heavy extras: benchmarks, load runs, local
services, browsers."""
