"""The instrumented workload: a C engine (engine.c + one mode_*.c per completion mode) built
with cffi into workloads._engine, its Python driver (driver.py), and `python -m workloads`."""
