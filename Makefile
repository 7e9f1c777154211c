# The two commands a newcomer needs, each installing what it needs first:
#   make demo   a local control plane, the operator and an example pair
#   make test   every test (lint, types, unit, workloads, control plane)
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json

.PHONY: help deps controlplane build test bench demo clean

help:
	@echo "make demo    run the operator against a local control plane with an example pair"
	@echo "make test    install everything and run every test"
	@echo "make bench   run the benchmarks"

# npm brings Node 24 itself (the node@24 package); npm scripts then run on it.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

deps: $(NPM_STAMP)

# etcd from Debian and kube-apiserver/kube-controller-manager built from the Go module proxy, cached
# under ~/.cache/pingpong so a fresh clone reuses them.
controlplane:
	bash hack/controlplane/install-etcd.sh
	bash hack/controlplane/build.sh >/dev/null

build: deps
	npm run build

test: deps controlplane
	npm test

bench: deps controlplane
	npm run bench

demo: deps controlplane build
	node_modules/.bin/node dist/cli.js demo

clean:
	rm -rf dist coverage
