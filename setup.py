# The cffi extensions (workloads/_engine, tracer/parse/_scan) are declared here because cffi_modules is a
# setup() keyword; everything else lives in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["workloads/build_engine.py:ffibuilder", "workloads/build_engine.py:model_ffibuilder",
                      "tracer/parse/build_scan.py:ffibuilder"])
