"""The base layer: what a run is (spec), the completion modes (modes), the model's columns
(schema), errors and safe output writes. It imports nothing else from aiotrace, so the workload
(workloads/) and every upper layer can use it.

Layers, each importing only those before it (tests/test_layers.py checks this):
  base -> parse -> capture | model -> analysis -> view -> commands (tracer.cli, */cli.py)
and workloads/ imports only base.
"""
