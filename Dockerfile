# syntax=docker/dockerfile:1
# One image for the operator and its workloads: the entrypoint is the `pingpong` CLI, so the
# operator's Deployment runs it with `operator` and the pairs' pods with `ponger` or `pinger`.
#
#   docker build -t pingpong-operator:dev .
#   docker run --rm pingpong-operator:dev ponger --help

ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# Compile TypeScript to dist/ and bundle the entry point into dist/pingpong.cjs (`npm run build`).
# --ignore-scripts: the only install script is the dev-only `node` package (the project's own Node
# for development); this stage already runs Node 24.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json rolldown.config.ts cli.ts entrypoint.ts ./
COPY lib lib
COPY operator operator
COPY workloads workloads
COPY controlplane controlplane
RUN npm run build

# Production dependencies only.
FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# No shell, no package manager; Node 24 and the app, owned by root and read-only to the app user,
# so the pods run with readOnlyRootFilesystem. Nothing is written at run time.
FROM ${RUNTIME_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
# package.json says "type": "module": dist/ is ES modules, but for dist/pingpong.cjs, the entry point:
# ponger and pinger run from that one CommonJS file, every other command loads dist/cli.js.
COPY package.json ./
COPY --from=production-dependencies /src/node_modules node_modules
COPY --from=build /src/dist dist
# Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd (65532 is distroless's
# nonroot user).
USER 65532:65532
EXPOSE 8080 8443 9090
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/pingpong.cjs"]
CMD ["operator"]
