# The README's two commands: `make demo` and `make test`. Both set up everything first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
SYS_PKGS := liburing-dev libaio-dev bpftrace strace fio systemtap-sdt-dev shellcheck chromium chromium-driver clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
ZIGCC := $(PY) -m ziglang cc -target x86_64-freebsd
FREEBSD_OUT := workloads/out/aiotrace-workload.x86_64-freebsd

.PHONY: setup sysdeps test test-fast demo bench freebsd-check freebsd-build freebsd-kit clean

# System packages: installed when root on Debian, otherwise named so the user can install them.
sysdeps:
	@missing=""; for p in $(SYS_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing system packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "aiotrace: missing system packages:$$missing; install them with: sudo apt-get install$$missing" >&2; \
	fi

$(VENV)/.stamp: pyproject.toml setup.py workloads/build_engine.py $(wildcard workloads/*.c workloads/*.h workloads/fbsd_model/*.[ch] workloads/fbsd_model/include/*.h workloads/fbsd_model/include/sys/*.h) tracer/parse/build_scan.py tracer/parse/scan.c tracer/parse/scan.h
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

setup: sysdeps $(VENV)/.stamp
	@# the libbpf backend's consumer (cached by source hash; skipped with a note when tools or BTF are missing)
	@$(PY) -m tracer.capture.libbpf >/dev/null || echo "aiotrace: libbpf backend not built (see aiotrace doctor)" >&2

test: setup
	$(PY) -m pytest -q tests

# No tracer, no long run (markers in tests/conftest.py), one worker per CPU: about a minute on 2 CPUs.
test-fast: setup
	$(PY) -m pytest -q -n auto -m "not slow and not tracing" tests

demo: setup
	$(VENV)/bin/aiotrace demo

bench: setup
	$(PY) bench/run_all.py

# Cross-compile and link the C workload for FreeBSD with Zig's bundled FreeBSD libc, then
# check the result is a FreeBSD executable (ABI tag note + ld-elf.so.1, workloads/elfcheck.py).
# freebsd-build needs only the venv's ziglang (the tests call it directly). freebsd-kit then writes
# the run kit to copy to a FreeBSD host (aiotrace freebsd-kit) and checks its run.sh.
FREEBSD_KIT := workloads/out/freebsd-kit
freebsd-check: setup freebsd-build freebsd-kit

freebsd-kit: setup freebsd-build
	@rm -rf $(FREEBSD_KIT)
	$(VENV)/bin/aiotrace freebsd-kit --out $(FREEBSD_KIT) >/dev/null
	sh -n $(FREEBSD_KIT)/run.sh
	shellcheck -s sh $(FREEBSD_KIT)/run.sh

freebsd-build:
	@mkdir -p $(dir $(FREEBSD_OUT))
	$(ZIGCC) -std=c11 -O2 -Wall -Wextra -Werror -o $(FREEBSD_OUT) workloads/main.c workloads/engine.c workloads/mode_posix.c $(wildcard workloads/mode_freebsd_*.c) -lpthread
	@$(PY) -m workloads.elfcheck $(FREEBSD_OUT) --expect freebsd

clean:
	rm -rf build workloads/out workloads/_engine*.so workloads/_engine.c workloads/_fbsd_model*.so workloads/_fbsd_model.c workloads/*.o tracer/parse/_scan*.so tracer/parse/_scan.c tracer/parse/*.o *.egg-info .pytest_cache
