# canary-proxy image: canary-proxy, canaryctl and demo-backend on Debian 12, run as a non-root user.
#   docker build -t canary-proxy .
#   docker compose up --build        (the demo: see docs/docker.md)
# The package lists are checked by the packaging.dockerfile_packages test: the build stage
# installs the Makefile's build packages, the runtime stage exactly the libraries the binaries
# link (ldd + dpkg -S).

# ---- build: the same Debian packages `make test` builds with
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config python3 \
      libboost1.81-dev libboost-json1.81-dev libyaml-cpp-dev libspdlog-dev libre2-dev \
      libssl-dev libnghttp2-dev libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build --target canary-proxy canaryctl demo-backend \
 && strip build/bin/canary-proxy build/bin/canaryctl build/bin/demo-backend \
 && build/bin/canary-proxy --config packaging/canary-proxy.yaml --check

# ---- runtime: the shared libraries only
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libboost-json1.81.0 libc6 libfmt9 libgcc-s1 libprometheus-cpp-core1.0 libre2-9 \
      libnghttp2-14 libspdlog1.10 libssl3 libstdc++6 libyaml-cpp0.7 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/canary-proxy \
      --shell /usr/sbin/nologin canary \
 && install -d -o canary -g canary -m 0700 /var/lib/canary-proxy
COPY --from=build /src/build/bin/canary-proxy /src/build/bin/canaryctl \
     /src/build/bin/demo-backend /usr/bin/
COPY packaging/canary-proxy.yaml /etc/canary-proxy/config.yaml

USER canary
WORKDIR /var/lib/canary-proxy
# The rollout state (state_file) must outlive the container.
VOLUME ["/var/lib/canary-proxy"]
EXPOSE 8080 9901
# GET /healthz on the admin listener, with bash's /dev/tcp: the image has no HTTP client.
# CANARY_HEALTH_PORT is the port to probe (demo-backend containers set theirs).
ENV CANARY_HEALTH_PORT=9901
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${CANARY_HEALTH_PORT} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r -t 2 version status rest <&3 && [ \"$status\" = 200 ]"]
# SIGTERM drains (timeouts.drain, 15s by default): give `docker stop` more than that (-t 30, or
# stop_grace_period in compose).
STOPSIGNAL SIGTERM
ENTRYPOINT ["canary-proxy"]
CMD ["--config", "/etc/canary-proxy/config.yaml"]
