# LLM Gateway on a slim Node 24 image. Build and run:
#   docker build -t llm-gateway .
#   docker build --build-arg SNAPSHOT=skip -t llm-gateway .   # no start-up snapshot (emulated cross-arch builds)
#   docker run --rm -p 12345:12345 --env-file .env llm-gateway
#   docker run --rm -p 12345:12345 --env-file .env -v "$PWD/gateway.yaml:/app/gateway.yaml:ro" \
#     -e LLM_GATEWAY_CONFIG=/app/gateway.yaml llm-gateway
# Budgets and cooldowns persist in state.path (default data/state.db, inside the container): point it at a mounted
# volume to keep them across containers, or share them through Redis (state.redis_url). The sources are TypeScript
# run by Node 24's type stripping; the container starts from the start-up snapshot bin/build.js writes to dist/ with
# the bundle (a faster start and a smaller footprint, README "Start-up and memory"), built in a stage of its own
# because esbuild is a devDependency. Not built in this project's CI (no container engine).

# Stage 1: production dependencies only (npm ci --omit=dev from the lock file).
FROM node:24-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
# The image's own Node 24 runs the gateway; the `node` package (the pinned runtime for `npm start` elsewhere) is
# not needed here, so its install script, which downloads a second Node binary, is skipped with --ignore-scripts.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# Stage 2: the bundle (dist/), from the same lock file's packages. A start-up snapshot that cannot be built (a module
# that reads the clock, randomness or the environment when it loads: bin/snapshot-guard.js; or V8 under an emulated
# cross-arch build, `--platform linux/arm64` on an amd64 host) fails this stage. `--build-arg SNAPSHOT=skip` builds
# none (bin/build.js --no-snapshot): dist/ gets a blob of Node alone and the image starts from the bundle, without the
# snapshot's faster start (README "Start-up and memory"). Any other value than `build` (the default) or `skip` fails.
FROM node:24-slim AS build
ARG SNAPSHOT=build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY bin ./bin
COPY src ./src
RUN case "$SNAPSHOT" in \
      build) node bin/build.js ;; \
      skip) node bin/build.js --no-snapshot ;; \
      *) echo "SNAPSHOT must be build or skip, not: $SNAPSHOT" >&2; exit 1 ;; \
    esac

# Stage 3: the runtime.
FROM node:24-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=12345
# glibc gives each thread that allocates its own malloc arena; two are enough for Node's few threads and keep
# ~15 MB off the RSS under load (171-181 vs 155-163 MB after 64-connection loads in `npm run bench -- --quick`; 131 vs
# 143 MB, every one of 10 interleaved rounds lower, bench/README.md section 37). Only the environment can set it: glibc
# reads it once, before any JavaScript runs.
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
# The sources with the times they had when the bundle was built from them: bin/start-entry.js uses dist/ only
# while no source is newer than it (it falls back to the sources otherwise).
COPY --from=build /app/src ./src
COPY --from=build /app/dist ./dist
COPY config ./config
COPY --chown=node:node data ./data
# Warm Node's compile cache (the bundle's V8 code) and the parsed scoring data (data/cache/) at build time: the
# container starts without compiling anything or parsing the leaderboards. Both are keyed by file contents, so a
# stale entry is never used. It also writes the scoring memo's entries (src/scoring/scoring-memo.ts) of the demo's
# config and of the config `serve` would load here (LLM_GATEWAY_CONFIG, else config/meta-providers.yaml), when that
# config loads at build time: a config copied into the image and named by an ENV line above this RUN, whose providers'
# keys resolve at build time, starts without loading the scoring data; the shipped config has no key here (its models
# are discovered with the keys given at run time), so its first start writes its memo entries. data/cache/ stays
# writable by the runtime user for that, and later starts do not load the scoring data at all.
ENV NODE_COMPILE_CACHE=/app/.compile-cache
RUN node bin/warm-caches.js && chown -R node:node /app/.compile-cache /app/data/cache
USER node
EXPOSE 12345
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/ok`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# As `npm start`: from the start-up snapshot the build stage wrote with dist/ (dist/snapshot.blob, for this image's Node:
# both stages are node:24-slim, and /app in both). bin/warm-caches.js above ran bin/build.js --if-stale, which leaves a
# blob this Node can start there whatever happened (the snapshot, else one of Node alone, which runs
# bin/llm-gateway.js as without a blob): Node exits on a missing blob or another Node's. With SNAPSHOT=skip, that blob
# of Node alone (warm-caches.js keeps it: no esbuild here to build the snapshot), and the bundle runs.
CMD ["node", "--snapshot-blob", "dist/snapshot.blob", "bin/llm-gateway.js", "serve"]
