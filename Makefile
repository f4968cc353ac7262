# Developer entry points. Targets that need OpenSSH's sshd install it with apt when it is
# missing (as root, or through sudo when that exists).

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed.stamp
SSHD := /usr/sbin/sshd
SUDO := $(shell if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then echo sudo; fi)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv sshd-deps demo test lint docs man check

venv: $(VENV_STAMP)

# Reinstalled when the packaging or the dev requirements change.
$(VENV_STAMP): setup.py pyproject.toml requirements_dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -e . -r requirements_dev.txt
	touch $@

sshd-deps:
	@if [ ! -x $(SSHD) ]; then \
		$(APT_GET) update && $(APT_GET) install -y openssh-server </dev/null; \
	fi

demo: sshd-deps venv
	$(VENV)/bin/python examples/local_demo.py
	$(VENV)/bin/python examples/cli_demo.py

test: sshd-deps venv
	$(VENV)/bin/python -m pytest tests

lint: venv
	$(VENV)/bin/ruff check pssh tests examples benchmarks
	$(VENV)/bin/mypy

# The HTML docs, with every cross-reference resolved and no warning allowed.
docs: venv
	$(VENV)/bin/sphinx-build -n -W --keep-going -q -b html doc doc/_build/html

# pssh(1), the command line's manual page, from doc/cli.rst: doc/_build/man/pssh.1
man: venv
	$(VENV)/bin/sphinx-build -n -W --keep-going -q -b man doc doc/_build/man

# What CI checks: lint, types, docs, then the examples and the tests.
check: lint docs test

# Quick benchmark against the peers (each installed by run.py into benchmarks/.venvs/);
# BENCH_ARGS adds options, e.g. make bench BENCH_ARGS="--out benchmarks/results/quick.jsonl".
BENCH_ARGS ?=
.PHONY: bench
bench: sshd-deps venv
	$(VENV)/bin/python benchmarks/run.py --quick $(BENCH_ARGS)
