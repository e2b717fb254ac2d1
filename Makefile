# The two commands of the README: `make run` and `make test`. Everything they need is
# installed here on first use (a venv in .venv, the Kafka jars in ~/.cache).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# rustup's default location: the native line scanner (native/) is built with the package
# when cargo is found; without it the package installs with the pure-Python scanner.
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: run test unit integration lint bench kafka-jars system-deps browser-deps rsyslog-deps clean

$(STAMP): pyproject.toml native/Cargo.toml native/Cargo.lock native/src/lib.rs
	@command -v cargo >/dev/null || echo "cargo not found: installing without the native scanner (same output, slower)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@$(PY) -c "from pipeline.ingest.scan import native_available as n; print('line scanner:', 'Rust' if n() else 'pure Python (no cargo: same output, slower)')"
	touch $@

# The broker needs Java 17+ and Maven; on Debian/Ubuntu (as root) they are installed here.
system-deps:
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && apt-get install -y -q openjdk-17-jre-headless maven; \
	  else echo "Java 17+ and Maven are needed for the local Kafka broker; please install them"; exit 1; fi; \
	fi

# The dashboard tests drive Debian's Chromium (Playwright's own download is not used).
browser-deps:
	@if ! command -v chromium >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && apt-get install -y -q chromium; \
	  else echo "Chromium is needed for the dashboard tests; please install it"; exit 1; fi; \
	fi

# deploy/rsyslog/ is tested with Debian's rsyslogd and its omkafka module.
rsyslog-deps:
	@if ! command -v rsyslogd >/dev/null || ! ls /usr/lib/*/rsyslog/omkafka.so >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && apt-get install -y -q rsyslog rsyslog-kafka; \
	  else echo "rsyslog and rsyslog-kafka are needed for the rsyslog shipping test; please install them"; exit 1; fi; \
	fi

kafka-jars: system-deps
	bash deploy/kafka/kafka.sh fetch

run: $(STAMP) kafka-jars
	$(VENV)/bin/smtp-auth run

test: $(STAMP) kafka-jars browser-deps rsyslog-deps
	$(PY) -m pytest tests

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP) kafka-jars browser-deps rsyslog-deps
	$(PY) -m pytest tests/integration

lint: $(STAMP)
	$(VENV)/bin/ruff check pipeline schemas tests bench
	$(VENV)/bin/mypy
	@if command -v cargo >/dev/null; then \
	  cd native && cargo fmt --check && PYO3_PYTHON=$(CURDIR)/$(PY) cargo clippy -q --release -- -D warnings; \
	else echo "cargo not found: native/ not linted"; fi

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache native/target pipeline/ingest/_scan*.so

bench: $(STAMP) kafka-jars
	@command -v pflogsumm >/dev/null || (apt-get update -q && apt-get install -y -q pflogsumm)
	$(PY) bench/normalize_vs_pflogsumm.py | tee -a bench/RESULTS.md
	$(PY) bench/reports_bench.py | tee -a bench/RESULTS.md
	$(PY) bench/live_bench.py | tee -a bench/RESULTS.md
	$(PY) bench/e2e_bench.py | tee -a bench/RESULTS.md
