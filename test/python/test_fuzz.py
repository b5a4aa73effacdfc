"""libFuzzer targets of the codecs (test/fuzz/): they build, every committed
seed is a valid input, and a bounded fuzzing run of each target over a
temporary copy of its corpus finds nothing.

STREAMLOG_FUZZ_SECONDS sets the run time per target (default 20).  Skipped
only when clang-14 with libFuzzer is not installed (scripts/deps.sh installs
it).  No server is needed."""

import os
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FUZZ_DIR = os.path.join(ROOT, "test", "fuzz")
BIN = os.path.join(FUZZ_DIR, "bin")
CORPUS = os.path.join(FUZZ_DIR, "corpus")
PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/bin/pg_config")
SECONDS = int(os.environ.get("STREAMLOG_FUZZ_SECONDS", "20"))

TARGETS = ["fuzz_request", "fuzz_record_batch", "fuzz_decompress", "fuzz_consumer_protocol",
           "fuzz_scram", "fuzz_metadata", "fuzz_stream_message", "fuzz_txn_log",
           "fuzz_control_records", "fuzz_http_request"]
if os.path.exists(os.path.join(ROOT, "src", "protocol", "legacy_records.h")):
    TARGETS.append("fuzz_legacy")

BAD_OUTPUT = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error",
              "ERROR: libFuzzer", "invariant failed", "seed not accepted")

SANITIZER_ENV = {
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def libfuzzer_missing():
    """Why clang-14 cannot build a libFuzzer program here, or None."""
    clang = shutil.which("clang-14")
    if clang is None:
        return "clang-14 is not installed (scripts/deps.sh installs it)"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <stddef.h>\n#include <stdint.h>\n"
                    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                    " { (void) d; (void) n; return 0; }\n")
        r = subprocess.run([clang, "-fsanitize=fuzzer,address,undefined", "-o",
                            os.path.join(tmp, "probe"), src],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return ("clang-14 cannot link a libFuzzer program (install "
                    "libclang-rt-14-dev and libfuzzer-14-dev): " + r.stderr.strip()[-300:])
    return None


@pytest.fixture(scope="module")
def fuzzers():
    why = libfuzzer_missing()
    if why:
        pytest.skip(why)
    r = subprocess.run(["make", "-C", ROOT, "fuzz", "PG_CONFIG=" + PG_CONFIG],
                       capture_output=True, text=True)
    assert r.returncode == 0, "make fuzz failed:\n" + r.stdout[-3000:] + r.stderr[-3000:]
    for t in TARGETS:
        assert os.access(os.path.join(BIN, t), os.X_OK), t + " was not built"
    return BIN


def run(args, cwd, timeout, extra_env=None):
    env = dict(os.environ, **SANITIZER_ENV)
    env.update(extra_env or {})
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          errors="replace", timeout=timeout)


def check_output(r, what):
    out = r.stdout + r.stderr
    bad = [s for s in BAD_OUTPUT if s in out]
    assert r.returncode == 0 and not bad, (
        "%s: exit %d, %s\n%s" % (what, r.returncode, bad or "no sanitizer report",
                                 out[-6000:]))


@pytest.mark.parametrize("target", TARGETS)
def test_seeds_are_valid(fuzzers, target, tmp_path):
    seeds = sorted(os.path.join(CORPUS, target, f)
                   for f in os.listdir(os.path.join(CORPUS, target)))
    assert any(os.path.basename(s).startswith("seed-") for s in seeds)
    only_seeds = [s for s in seeds if os.path.basename(s).startswith("seed-")]
    r = run([os.path.join(fuzzers, target), "-artifact_prefix=%s/" % tmp_path] + only_seeds,
            cwd=tmp_path, timeout=120, extra_env={"STREAMLOG_FUZZ_EXPECT_VALID": "1"})
    check_output(r, target + " on its seeds")
    # reproducers of fixed bugs (any other file) must no longer crash
    others = [s for s in seeds if s not in only_seeds]
    if others:
        r = run([os.path.join(fuzzers, target), "-artifact_prefix=%s/" % tmp_path] + others,
                cwd=tmp_path, timeout=120)
        check_output(r, target + " on the reproducers in its corpus")


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_run(fuzzers, target, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(os.path.join(CORPUS, target), corpus)
    before = sorted(os.listdir(os.path.join(CORPUS, target)))
    r = run([os.path.join(fuzzers, target), "-max_total_time=%d" % SECONDS,
             "-timeout=20", "-rss_limit_mb=2560", "-print_final_stats=1",
             "-artifact_prefix=%s/" % tmp_path, str(corpus)],
            cwd=tmp_path, timeout=SECONDS + 300)
    check_output(r, "%s for %ds" % (target, SECONDS))
    assert "stat::number_of_executed_units" in r.stdout + r.stderr
    assert sorted(os.listdir(os.path.join(CORPUS, target))) == before
