# Bulwark: every target is a thin wrapper over go, npm, a script in deploy/,
# or docker compose. `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

.PHONY: run
run: ## run the whole stack natively (needs Go, npm and redis-server); Ctrl-C stops it
	@bash deploy/run.sh

.PHONY: test
test: ## vet and test every module and the UI against real Redis and a MongoDB wire server
	@bash deploy/test.sh

.PHONY: web
web: ## build the dashboard UI into web/dist/app (embedded by the dashboard)
	cd web && npm ci --no-audit --no-fund && npm run build

.PHONY: build
build: web ## build every binary into bin/
	go build -o bin/ ./gateway/cmd/gateway ./scorer/cmd/scorer ./dashboard/cmd/dashboard ./deploy/cmd/shop ./deploy/cmd/geoipgen ./deploy/cmd/simulator
	go build -o bin/devstack ./deploy/devstack

.PHONY: lint
lint: ## gofmt and go vet over every module
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet $$(go list -m -f '{{.Dir}}/...')

.PHONY: up
up: ## docker compose up --build (needs a Docker engine)
	docker compose up --build

.PHONY: attack
attack: ## the stack plus the traffic simulator (docker compose --profile attack)
	docker compose --profile attack up --build

.PHONY: detect
detect: ## measure detection: simulate every scenario against a local stack (DURATION=60s)
	@bash deploy/detect.sh

.PHONY: bench
bench: ## Go benchmarks (scorer, gateway chain, dashboard ban listing), then load: direct, bare Go proxy, nginx and Bulwark under wrk and vegeta (BENCH_DURATION, BENCH_GO=0)
	@bash deploy/bench.sh

.PHONY: soak
soak: ## MongoDB cut for SOAK_OUTAGE (180s) under SOAK_RATE (300) events/s: every event lands once (about 5 min)
	@bash deploy/soak.sh
