# monmix: two commands.
#   make run    install what is missing, build release, serve the demo band
#   make test   install what tests need, then every check CI runs
#               (includes tests/it/fuzz_smoke.rs: a short fuzz run of every target)
#   make fuzz   long cargo-fuzz runs: FUZZ_SECONDS per target (600), FUZZ_MERGE=1 keeps new corpus
CARGO ?= cargo
ARGS ?=
export PATH := $(HOME)/.cargo/bin:$(PATH)
# Release builds run where they are built (a stage laptop, a Pi): let the mixer use the
# CPU's vector units (AVX2/FMA halve the mix cost per listener, see BENCHMARKS.md).
NATIVE := RUSTFLAGS="-C target-cpu=native"

.PHONY: run test test-web test-firefox bench-phone setup build lint bench clean-state crashloop soak fuzz

setup:
	@scripts/setup

build: setup
	$(NATIVE) $(CARGO) build --release

run: build
	./target/release/monmix serve $(ARGS)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test:
	@scripts/setup test
	$(MAKE) lint
	node scripts/check-cycles.mjs
	npx --no-install eslint web tests/e2e tests/firefox scripts eslint.config.js
	$(CARGO) build --bin monmix --example whep_listen
	$(CARGO) test
	$(MAKE) test-web
	$(MAKE) test-firefox

# Browser tests of the web page (tests/e2e/): headless Debian chromium, real servers.
test-web:
	node --test --test-concurrency=1 --test-timeout=300000 tests/e2e/

# Firefox ESR over WebDriver BiDi from a LAN address (tests/firefox/), playing into a
# private PipeWire's pulse server.
test-firefox:
	node --test --test-concurrency=1 --test-timeout=300000 tests/firefox/

# The phone path's latency by a click (tests/e2e/phone_latency.bench.mjs): a private PipeWire,
# target/debug/monmix, WHEP into Chromium playing into a PipeWire sink; prints `# bench` lines
# beside the page's readout (make test holds the 10 ms readout to it: phone_readout.test.mjs).
bench-phone:
	node tests/e2e/phone_latency.bench.mjs

# 200 kill -9 cycles under WebSocket and OSC load (make test runs 20): RELIABILITY.md.
crashloop:
	scripts/crashloop

# 64 listeners for SOAK_SECONDS (default 1800), release build: RELIABILITY.md.
soak:
	scripts/soak

# Long cargo-fuzz runs (make test runs a short nightly-free version): fuzz/README.md.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz $(FUZZ_TARGETS)

bench:
	$(NATIVE) $(CARGO) bench

clean-state:
	rm -f state.json state.json.bak state.json.tmp*
