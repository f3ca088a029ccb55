# One venv, made from pyproject.toml; every target below uses it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TARGET ?= x86-host
MODEL ?=
SAMPLES ?= 16000
BATCH ?= 1

.PHONY: setup test test-fast system-deps ci-bench lint analyze profile export bench report clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,openvino]'
	touch $(STAMP)

setup: $(STAMP)

# mypy covers all of toolkit/; the modules listed in pyproject.toml's strict override are checked strictly. The
# import-order test (tests/test_layers.py) runs here too: a layering slip is a lint error, found in seconds.
lint: $(STAMP)
	$(VENV)/bin/ruff check toolkit tests benchmarks
	$(VENV)/bin/mypy toolkit
	$(PY) -m pytest -q -p no:cacheprovider tests/test_layers.py

# pytest over tests/ with extra arguments. pytest exits 5 when it collected nothing: that is a broken suite, not a
# pass.
define pytest
$(PY) -m pytest -q $(1) tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected: failing"; exit 1; fi; exit $$rc
endef

# The README's test command, and CI's: the system packages the tests drive (qemu, debootstrap, sshd, chromium),
# lint, the short runs whose summaries CI prints (a quick host profile with its report, a quick benchmark), the
# whole suite, then the published models (frontends, below; after the suite, so a model's problem never hides the
# suite's result).
test: system-deps lint ci-report ci-bench ci-arm
	$(call pytest)
	$(MAKE) --no-print-directory frontends

# The suite without the tests marked slow, qemu, sshd or browser (pyproject.toml's markers): under a minute on
# 2 cores.
test-fast: $(STAMP)
	$(call pytest,-m "not slow and not qemu and not sshd and not browser")

system-deps: ci-deps browser-deps

ci-bench: $(STAMP)
	$(MAKE) --no-print-directory bench BENCH_QUICK=1

analyze: $(STAMP)
	$(PY) -m toolkit analyze $(MODEL) --batch $(BATCH) --samples $(SAMPLES)

clean:
	rm -rf $(VENV) build artifacts .pytest_cache

# ARM boards under emulation (issue 4). ci-deps installs, only when missing, the Debian packages they need:
# qemu-user (the qemu-aarch64 that loads TCG plugins), qemu-user-static (binfmt_misc entry with the F flag, so
# aarch64 programs start inside a chroot), debootstrap, openssh-server and openssh-client (the SSH test board),
# gcc, pkg-config and libglib2.0-dev (the counting plugin); then builds the plugins into MELTOOLKIT_CACHE.
# arm-rootfs builds the arm64 rootfs there (about 5 minutes), or reuses it.
MELTOOLKIT_CACHE ?= /var/cache/meltoolkit
ARM_DEBS := qemu-user qemu-user-static debootstrap openssh-server openssh-client gcc pkg-config libglib2.0-dev xz-utils
.PHONY: ci-deps arm-rootfs
ci-deps:
	@missing=$$(for p in $(ARM_DEBS); do dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "ci-deps: installing $$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	MELTOOLKIT_CACHE=$(MELTOOLKIT_CACHE) toolkit/profiling/qemu_plugins.sh

arm-rootfs: $(STAMP) ci-deps
	MELTOOLKIT_CACHE=$(MELTOOLKIT_CACHE) PIP="$(PY) -m pip" toolkit/profiling/arm_rootfs.sh

# Reports (issue 6): Markdown + one self-contained HTML per run, from every target with results under
# build/ and artifacts/ (TARGETS="x86-host rpi4" narrows it). browser-deps installs Debian's chromium for the
# browser test (tests/test_report_browser.py drives /usr/bin/chromium with Playwright), only when it is missing.
TARGETS ?=
.PHONY: browser-deps
report: $(STAMP)
	$(PY) -m toolkit report $(foreach t,$(TARGETS),--target $(t)) --format md --format html

browser-deps:
	@test -x /usr/bin/chromium || { echo "browser-deps: installing chromium"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Profiling a target (issue 3): variants -> accuracy gate -> counts -> profile over the target's matrix -> compare ->
# select -> artifacts/$(TARGET)/. HOST=user@board measures a board over SSH; RESUME=1 skips finished stages.
# bench: pytest-benchmark over variants x providers on this host (BENCH_QUICK=1: a short run); JSON in build/bench/.
# ci-report: a quick profile of the default model on x86-host, then its Markdown summary table; the HTML and
# Markdown reports are kept in build/ci/report/.
HOST ?=
RESUME ?=
# PIPELINE=openwakeword profiles the whole wake-word chain (pipelines/*.toml, toolkit/wakeword/); its models come
# from STAGES="embedding=a.onnx classifier=b.onnx ..." or, for stages not given, the pipeline's PyPI package
# installed with pip --no-deps into MELTOOLKIT_CACHE.
PIPELINE ?=
STAGES ?=
BENCH_QUICK ?=
.PHONY: ci-report
# A board target with no HOST runs under emulation: the rootfs and QEMU's plugins are made first (cached).
EMULATED := $(if $(HOST),,$(if $(filter x86-host,$(TARGET)),,arm-rootfs))
profile: $(STAMP) $(EMULATED)
	$(PY) -m toolkit profile $(MODEL) --target $(TARGET) $(if $(HOST),--host $(HOST)) $(if $(RESUME),--resume) \
		$(if $(PIPELINE),--pipeline $(PIPELINE) $(foreach s,$(STAGES),--stage $(s)))

export: $(STAMP)
	$(PY) -m toolkit export --target $(TARGET)

# A runner result made by hand on a board (python3 runner.py BUNDLE --out file.json): gate, compare, select, export.
RESULTS ?=
.PHONY: import
import: $(STAMP)
	@test -n "$(RESULTS)" || { echo "error: make import needs RESULTS=file.json (a runner result from the board)"; exit 2; }
	$(PY) -m toolkit profile $(MODEL) --target $(TARGET) --import $(RESULTS)

bench: $(STAMP)
	mkdir -p build/bench
	BENCH_QUICK=$(BENCH_QUICK) $(PY) -m pytest -q benchmarks --benchmark-json build/bench/benchmark.json
	$(PY) benchmarks/summary.py build/bench/benchmark.json

ci-report: $(STAMP)
	$(PY) -m toolkit profile --target x86-host --quick --build build/ci --artifacts build/ci/artifacts
	$(PY) -m toolkit report --build build/ci --artifacts build/ci/artifacts --out build/ci/report --quiet

# ci-arm: one emulated aarch64 profile of the default model in CI: rpi4 (the real aarch64 onnxruntime and LiteRT
# under qemu-aarch64 -cpu cortex-a72), the original + the fastest exact rewrite + TFLite, the runner's quick
# settings, instructions counted on the chunk; prints its summary table (latency `predicted`). The rootfs and
# plugins come from MELTOOLKIT_CACHE, built first when the cache is gone.
.PHONY: ci-arm
ci-arm: $(STAMP) arm-rootfs
	$(PY) -m toolkit profile --target rpi4 --quick --only dft-400tap-fused-mel-sparse --only tflite \
		--build build/ci-arm --artifacts build/ci-arm/artifacts

# frontends: the toolkit on published models (toolkit/frontends.py): onnx-asr 0.12.0's 15 front ends, openWakeWord
# 0.5.1's mel, embedding and hey_jarvis models and Silero VAD 6.2.3, pip-installed without dependencies into
# MELTOOLKIT_CACHE (never the repository). Every model gets analyze and explain (each onnx-asr graph also its
# publisher's NumPy reference): 1.2 min for all 19 here. The quick host profile is what costs: 9 min on all 16 front
# ends (a whisper STFT-op graph alone about 2.7 min, its 30 s window taking ~180 ms per inference), so `make test`
# profiles one model of each form: kaldi (STFT op), nemo80_conv (one Conv DFT), wespeaker (DFT op), whisper80_conv
# (padded to a 30 s window: the budget follows the window; ~10 ms per inference) and openWakeWord's mel (two Conv
# DFTs: every rewrite and TFLite): 3.2 min with the checks, measured here on 2 cores with other work beside.
# They profile without OpenVINO's settings (--no-openvino: they tripled these profiles' runs, and ci-report and
# ci-arm measure OpenVINO). FRONTENDS_ARGS= profiles every front end with them, --no-profile none, --only NAME checks one model. Exits 1 when any check
# finds a problem.
FRONTENDS_ARGS ?= --profile kaldi --profile nemo80_conv --profile wespeaker --profile whisper80_conv \
	--profile oww_melspectrogram --no-openvino
.PHONY: frontends
frontends: $(STAMP)
	MELTOOLKIT_CACHE=$(MELTOOLKIT_CACHE) $(PY) -m toolkit.frontends $(FRONTENDS_ARGS)

# wakeword-reference: the wake-word executor's scores against openWakeWord 0.5.1's own Model.predict on its own
# models (pip --no-deps into MELTOOLKIT_CACHE, never the repository); prints the largest difference per signal.
.PHONY: wakeword-reference
wakeword-reference: $(STAMP)
	MELTOOLKIT_CACHE=$(MELTOOLKIT_CACHE) $(PY) -m toolkit.wakeword.reference

# Fuzz the model loader (tests/fuzz_loader.py) with atheris for FUZZ_SECONDS; not part of CI. The corpus grows
# in build/fuzz/corpus across runs; a finding is saved as build/fuzz/crash-* and fails the target.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: $(STAMP)
	$(PY) -m pip install --quiet -e '.[fuzz]'
	mkdir -p build/fuzz/corpus
	$(PY) tests/fuzz_loader.py build/fuzz/corpus -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/fuzz/
