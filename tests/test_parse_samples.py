"""Every real sample in tests/data/samples parses without a traceback, is detected as its format,
accounts for every line, and every unparsed line is the one explained here (with the reason)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, SAMPLES, need
from tracer.base.errors import ParseError
from tracer.parse import parse_bytes
from tracer.parse.base import count_lines
from tracer.parse.detect import detect_format

# file -> (format, {line number: (text, why it is not tool output)}). Elision marks of abridged
# sources are counted as "elision" (see ELIDED), not unparsed.
EXPECTED = {
    "bpftrace/01-runqlat-hist.txt": ("bpftrace", {}),
    "bpftrace/04-cpuwalk-lhist.txt": ("bpftrace", {}),
    "bpftrace/07-syscount-two-maps.txt": ("bpftrace", {}),
    "bpftrace/10-lost-events-printf.txt": ("bpftrace", {}),
    "bpftrace/11-bashreadline-uretprobe-printf-str.txt": ("bpftrace", {}),
    "bpftrace/12-biostacks-kstack-keyed-hist-abridged.txt": ("bpftrace", {}),
    "dtrace/01-default-trace-exec-success.txt": ("dtrace", {}),
    "dtrace/03-count-agg-two-keys.txt": ("dtrace", {}),
    "dtrace/04-quantize-readch-per-execname.txt": ("dtrace", {}),
    "dtrace/08-macos105-error-on-enabled-probe-and-drops.txt": ("dtrace", {}),
    "dtrace/12-freebsd-testsuite-lquantize-aggpack-zoom.txt": ("dtrace", {}),
    "dtrace/17-macos-m1-default-header-tick-60s-printa-counts.txt": ("dtrace", {}),
    "dtrace/20-illumos-stack-ustack-rust-tick-10ms.txt": ("dtrace", {}),
    "dtrace/21-macos-jstack-hex-addresses-tick-60s.txt": ("dtrace", {}),
    "dtrace/22-freebsd-handbook-hotkernel-m-module-counts.txt": ("dtrace", {}),
    "dtrace/23-freebsd-handbook-procsystime-columns.txt": ("dtrace", {}),
    "dtrace/24-solaris-toolkit-pfilestat-mixed-case-columns.txt": ("dtrace", {}),
    "kdump/02-freebsd12-uul-gio-multiline.txt": ("kdump", {}),
    "kdump/06-freebsd-b2-fstatat-nami.txt": ("kdump", {}),
    "kdump/09-freebsd-vlang-psig-sigreturn-threads.txt": ("kdump", {}),
    "kdump/10-openbsd-f4-go-threads-kevent-thrsleep.txt": ("kdump", {}),
    "kdump/14-openbsd-kdump-T-libuv-fork-args-abridged.txt": ("kdump", {}),
    "kdump/16-dragonfly423-kdump-R-pid-tid-cpu-go-psig-sigsegv.txt": ("kdump", {}),
    "strace/01-qemu-aio-native-T-tt-f-y-io_submit-ppoll.txt": ("strace", {}),
    "strace/02-qemu-test-aio-io_uring_enter-sigcont-unfinished-resumed.txt": ("strace", {}),
    "strace/04-strace-c-es_locale-decimal-comma.txt": ("strace", {1: ("Hello, world!", "the traced program's stdout")}),
    "strace/07-ru_locale-f-tt-o-bare-pid-fork-exec-unfinished-resumed.txt": ("strace", {}),
    "strace/10-strace-f-c-sleep-summary-with-total.txt": ("strace", {}),
    "strace/19-musl-halfempty-f-threads-clone-futex-resumed.txt": ("strace", {}),
    "strace/21-linux-aio-io_submit-io_getevents-pread-2lines.txt": ("strace", {}),
    "truss/01-freebsd12-xrdp-chansrv-recvmsg-select-mmap.txt": ("truss", {}),
    "truss/05-freebsd11-dotnet-truss-f-d-H-kevent.txt": ("truss", {}),
    "truss/06-freebsd10-consul-truss-D-umtx-pwrite.txt": ("truss", {}),
    "truss/09-solaris-truss-c-summary-ls-nfs-2001.txt": ("truss", {}),
    "truss/12-solaris-kaio-aiowrite-aiowait-lwp.txt": ("truss", {}),
    "truss/13-solaris-dtruss-n-ksh-pid-lwp-return-errno.txt": ("truss", {}),
    "truss/14-solaris-dtruss-eon-bash-elapsed-cpu-us.txt": ("truss", {}),
}

ELIDED = {"bpftrace/12-biostacks-kstack-keyed-hist-abridged.txt": 1,
          "dtrace/04-quantize-readch-per-execname.txt": 1, "dtrace/08-macos105-error-on-enabled-probe-and-drops.txt": 1,
          "kdump/14-openbsd-kdump-T-libuv-fork-args-abridged.txt": 1,
          "kdump/16-dragonfly423-kdump-R-pid-tid-cpu-go-psig-sigsegv.txt": 1,
          "truss/05-freebsd11-dotnet-truss-f-d-H-kevent.txt": 1}


def test_every_sample_is_listed():
    need(SAMPLES.is_dir(), f"samples at {SAMPLES}")
    present = {str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("*/*") if p.is_file()}
    assert present == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_parses_and_accounts_for_every_line(name):
    need((SAMPLES / name).is_file(), f"sample {name}")
    data = (SAMPLES / name).read_bytes()
    fmt, unparsed = EXPECTED[name]
    assert detect_format(data) == fmt
    result = parse_bytes(data, "auto")
    assert result.format == fmt
    assert result.lines == count_lines(data)
    assert result.accounted_lines() == result.lines, result.counts
    got = {int(r.line): str(r.text).strip() for r in result.unparsed.itertuples()}
    assert got == {ln: text for ln, (text, _why) in unparsed.items()}
    assert result.counts.get("elision", 0) == ELIDED.get(name, 0)


def test_samples_yield_the_records_they_show():
    need(SAMPLES.is_dir(), f"samples at {SAMPLES}")

    def parse(name):
        return parse_bytes((SAMPLES / name).read_bytes(), "auto")

    lost = parse("bpftrace/10-lost-events-printf.txt")
    assert lost.losses["dropped_events"] == 4595
    drops = parse("dtrace/08-macos105-error-on-enabled-probe-and-drops.txt")
    assert drops.losses["dropped_events"] == 1005103 and drops.counts["probe_error"] == 4
    uul = parse("kdump/02-freebsd12-uul-gio-multiline.txt").events
    chdir = uul[(uul["name"] == "chdir") & (uul["ev"] == "sys_exit")]
    assert list(chdir["err"]) == [0, 2]  # `RET chdir -1 errno 2 No such file or directory`
    assert (uul[(uul["name"] == "execve") & (uul["ev"] == "sys_exit")]["err"] == -2).all()  # JUSTRETURN
    summ = parse("strace/04-strace-c-es_locale-decimal-comma.txt").summary
    assert summ["seconds"].dtype.kind == "f" and summ.iloc[-1]["syscall"] == "total"
    solaris = parse("truss/09-solaris-truss-c-summary-ls-nfs-2001.txt").summary
    assert solaris.set_index("syscall").loc["lstat64", "calls"] == 1185
    runq = parse("bpftrace/01-runqlat-hist.txt").aggregates
    hist = runq[runq["kind"] == "hist"]
    assert len(hist) == 21 and tuple(hist.iloc[0][["lo", "hi", "count"]]) == (0, 0, 1)  # `[0]  1`
    assert tuple(hist.iloc[2][["lo", "hi", "count"]]) == (2, 4, 16)  # `[2, 4)  16`
    assert (hist["lo"] == 512 * 1024).any()  # [512K, 1M)
    sys = parse("bpftrace/07-syscount-two-maps.txt").aggregates
    assert sys[(sys["map"] == "@process") & (sys["key"] == "make")]["value"].item() == 1404065
    pack = parse("dtrace/12-freebsd-testsuite-lquantize-aggpack-zoom.txt").aggregates
    assert (pack["kind"] == "pack").sum() > 0 and (pack["hi"] == float("inf")).any()
    st = parse("strace/07-ru_locale-f-tt-o-bare-pid-fork-exec-unfinished-resumed.txt")
    assert st.clock == "wallclock" and st.events["pid"].nunique() > 1


_CORPUS = sorted(p for p in SAMPLES.glob("*/*") if p.is_file() and p.name != "SOURCES.md") + \
    sorted((REPO / "tests" / "data" / "freebsd").glob("*/*/raw/*.txt"))[:12]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10_000), st.lists(
    st.tuples(st.integers(min_value=0, max_value=1 << 20), st.binary(max_size=6)), min_size=1, max_size=5),
    st.booleans())
def test_corrupted_real_output_raises_only_parse_error(pick, edits, auto):
    need(bool(_CORPUS), "samples or fixtures")
    path = _CORPUS[pick % len(_CORPUS)]
    data = bytearray(path.read_bytes())
    for pos, junk in edits:
        pos = pos % (len(data) + 1)
        data[pos:pos + len(junk)] = junk
    fmt = "auto" if auto else detect_format(path.read_bytes())
    try:
        r = parse_bytes(bytes(data), fmt)
    except ParseError:
        return
    assert r.accounted_lines() == r.lines == count_lines(bytes(data))
