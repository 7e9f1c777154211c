# The two commands a newcomer needs, each installing what it needs first:
#   make demo   a local cluster with its node, the operator as a pod, an example pair pinging
#   make test   every test (lint, types, unit, workloads, control plane, the node)
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json

.PHONY: help deps controlplane node helm prometheus build test bench demo clean
.PHONY: k3d-up image k3d-import deploy example watch ping k3d-down

help:
	@echo "make demo    a local cluster: the operator as a pod and an example pair, Ready with live pings"
	@echo "make test    install everything and run every test"
	@echo "make bench   run the benchmarks"
	@echo "On a real cluster (k3d, Docker): make k3d-up image k3d-import deploy example watch ping"

# npm brings Node 24 itself (the node@24 package); npm scripts then run on it.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

deps: $(NPM_STAMP)

# etcd from Debian and the Kubernetes commands built from the Go module proxy, cached under
# ~/.cache/pingpong so a fresh clone reuses them.
controlplane:
	bash hack/controlplane/install-etcd.sh
	bash hack/controlplane/build.sh >/dev/null

# The local node: Debian's containerd, runc, CNI plugins, nftables, iptables, ipset, buildah and
# mmdebstrap; CoreDNS and kube-router (its network-policy controller) from the Go module proxy; the
# pause and CoreDNS images and the Dockerfile's base images, assembled locally under their upstream
# names. All cached under ~/.cache/pingpong.
node: controlplane
	bash hack/node/install-packages.sh
	bash hack/node/build-kube-router.sh >/dev/null
	bash hack/images/build-base-images.sh

# Helm, for the chart's tests: built from the Go module proxy, cached under ~/.cache/pingpong.
helm:
	bash hack/helm/build.sh >/dev/null

# promtool, a PromQL name lister and the Prometheus Operator's CRDs, for config/prometheus's tests;
# Prometheus, the Prometheus Operator and its config reloader as images for the node's monitoring
# test: from the Go module proxy, cached under ~/.cache/pingpong (the images need `make node`'s buildah).
prometheus: node
	bash hack/prometheus/build.sh >/dev/null
	bash hack/images/build-prometheus-images.sh >/dev/null

build: deps
	npm run build

test: deps controlplane node image helm prometheus
	npm test

bench: deps controlplane
	npm run bench

# The cluster with its node, the image built from the Dockerfile, the operator installed from
# config/default; where the node cannot start, the demo says why and runs without one.
demo: deps controlplane node image build
	node_modules/.bin/node dist/cli.js demo

clean:
	rm -rf dist coverage

# The real-cluster path: k3d (k3s in Docker), one command per step. Needs docker, k3d and kubectl;
# it cannot run on machines without a Docker engine. The image name is the one config/default uses.
K3D_CLUSTER ?= pingpong
IMAGE := pingpong-operator:dev
EXAMPLE ?= examples/pingpongpair.yaml
PAIR ?= demo
NAMESPACE ?= default
need = @command -v $(1) >/dev/null || { echo "$(1) is not installed: $(2)"; exit 1; }

k3d-up:
	$(call need,k3d,https://k3d.io)
	k3d cluster create $(K3D_CLUSTER) --agents 1 --wait
	kubectl config use-context k3d-$(K3D_CLUSTER)

# docker build where a Docker engine runs; else buildah on the locally assembled base images, and the
# image is loaded into every local node started afterwards.
image:
	IMAGE=$(IMAGE) bash hack/images/build-image.sh

k3d-import:
	$(call need,k3d,https://k3d.io)
	k3d image import $(IMAGE) --cluster $(K3D_CLUSTER)

# The manifests the tests render and apply to the local control plane.
deploy:
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	kubectl apply --server-side -k config/default
	kubectl wait --for=condition=Established --timeout=60s crd/pingpongpairs.pingpong.dev
	kubectl -n pingpong-system rollout status deployment/pingpong-operator --timeout=120s

example:
	kubectl apply -n $(NAMESPACE) -f $(EXAMPLE)

watch:
	kubectl get -n $(NAMESPACE) pingpongpairs --watch

# GET /ping through a port-forward to the pair's ponger Service, with the pinger's client
# certificate (mutual TLS), checking the ponger's certificate against the pair's CA and DNS name.
# PING_PORT is the local end of the port-forward.
PING_PORT ?= 18443
ping:
	@dir=$$(mktemp -d) && pf="" && trap 'if [ -n "$$pf" ]; then kill $$pf; fi; rm -rf "$$dir"' EXIT && \
	for f in tls.crt tls.key ca.crt; do \
	  kubectl get secret -n $(NAMESPACE) $(PAIR)-pinger-tls -o "go-template={{index .data \"$$f\"}}" | base64 -d > "$$dir/$$f"; \
	done && \
	port=$$(kubectl get ppp -n $(NAMESPACE) $(PAIR) -o jsonpath='{.spec.ponger.port}') && \
	{ kubectl port-forward -n $(NAMESPACE) service/$(PAIR)-ponger $(PING_PORT):$$port > "$$dir/forward.log" 2>&1 & pf=$$!; } && \
	for i in $$(seq 100); do grep -q "Forwarding from" "$$dir/forward.log" && break; sleep 0.1; done && \
	curl --fail --silent --show-error --cacert "$$dir/ca.crt" --cert "$$dir/tls.crt" --key "$$dir/tls.key" \
	  --connect-to $(PAIR)-ponger.$(NAMESPACE).svc:$(PING_PORT):127.0.0.1:$(PING_PORT) \
	  https://$(PAIR)-ponger.$(NAMESPACE).svc:$(PING_PORT)/ping && echo

k3d-down:
	k3d cluster delete $(K3D_CLUSTER)
