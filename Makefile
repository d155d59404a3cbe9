# Two commands on a fresh machine: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint typecheck bench bench-scale lock clean migrate browser encoders

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(DEV_STAMP): requirements-dev.txt $(RUNTIME_STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

migrate: $(RUNTIME_STAMP)
	APP_ENV=$${APP_ENV:-development} $(BIN)/python manage.py migrate --noinput

## make run: web server and Celery worker in the foreground until Ctrl-C (local development mode).
run: migrate
	APP_ENV=$${APP_ENV:-development} $(BIN)/python manage.py runstack

## make test: lint, type-check, then the whole test suite.
test: $(DEV_STAMP) browser encoders lint typecheck
	APP_ENV=development $(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser test drives Debian's Chromium; install it where we may (root with apt), else it skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ; } || \
		echo "chromium is not installed and cannot be installed here: the browser test will be skipped"

# tests/unit/test_encoders.py makes files with other real encoders; install them where we may (root
# with apt, once: afterwards this is a lookup), else those tests skip, naming the missing tool. A
# `convert` that is not ImageMagick's (a stand-in some machines have on the PATH) does not count.
ENCODERS := cjpeg:libjpeg-turbo-progs cwebp:webp avifenc:libavif-bin tiffcp:libtiff-tools vips:libvips-tools convert:imagemagick
encoders:
	@missing=$$(for pair in $(ENCODERS); do tool=$${pair%%:*}; \
		if [ $$tool = convert ]; then convert -version 2>/dev/null | grep -q ImageMagick; \
		else command -v $$tool >/dev/null 2>&1; fi || echo $${pair#*:}; done); \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } ; } || \
		echo "not installed and cannot be installed here: $$missing; the tests that need them will be skipped"

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	APP_ENV=development $(BIN)/mypy .

bench: $(DEV_STAMP)
	APP_ENV=development $(BIN)/python -m bench

## make bench-scale: a busy day (100,000-row upload, 100,000 fast failures, a small request behind, a restart).
bench-scale: $(DEV_STAMP)
	APP_ENV=development $(BIN)/python -m bench scale

## make lock: re-resolve the pinned dependency files from requirements*.in.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt requirements.in
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
