# The two README commands (`make run`, `make test`) plus `make bench`. Each installs the Debian
# packages it needs when they are missing, configures with CMake + Ninja and builds.
BUILD ?= build
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# Build and test (make test, CI). Test tools: prometheus (promtool and a real server), chromium +
# nodejs/npm (dashboard test), clang + compiler-rt (TSan, fuzzing), docker-compose / systemd /
# dpkg-dev / fakeroot / file (packaging checks, offline; CPack needs `file` for shlibdeps).
PACKAGES := g++ make cmake ninja-build pkg-config git ca-certificates python3 curl procps wrk \
  libboost1.81-dev libboost-json1.81-dev libyaml-cpp-dev libspdlog-dev libre2-dev \
  libssl-dev openssl libnghttp2-dev nghttp2-client python3-h2 python3-grpcio python3-websockets \
  etcd-server etcd-client libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev \
  prometheus chromium clang libclang-rt-14-dev docker-compose systemd dpkg-dev fakeroot file
# Benchmark only (make bench); make profile adds valgrind (callgrind) and perf.
BENCH_PACKAGES := nginx-light haproxy wrk util-linux
PROFILE_PACKAGES := $(BENCH_PACKAGES) valgrind linux-perf
NEED_NODE ?= 1

.PHONY: deps bench-deps build run test bench profile package print-packages clean fuzz test-asan \
  test-tsan test-compose docker-deps soak
FUZZ_SECONDS ?= 60

print-packages:
	@echo $(PACKAGES)

# Node.js may come from elsewhere than Debian (e.g. NodeSource, which bundles npm): only install
# Debian's nodejs + npm when there is no npm at all.
NODE_PACKAGES := nodejs npm

deps:
	@missing=$$(for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ "$(NEED_NODE)" = 1 ] && ! command -v npm >/dev/null; then missing="$$missing $(NODE_PACKAGES)"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing missing packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

bench-deps:
	@$(MAKE) --no-print-directory deps PACKAGES="$(BENCH_PACKAGES)" NEED_NODE=0

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)
	cmake --build $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j2 --timeout 600

run: build
	scripts/run-demo.sh $(BUILD)/bin config/canary-demo.yaml

bench: build bench-deps
	python3 bench/bench.py --build $(BUILD)

# Where a request's CPU goes: instructions per request (callgrind), user vs system time, syscalls.
profile: build
	@$(MAKE) --no-print-directory deps PACKAGES="$(PROFILE_PACKAGES)" NEED_NODE=0
	python3 bench/profile.py --build $(BUILD)

package: build
	cmake --build $(BUILD) --target package

# libFuzzer over the request parser, validators and header rules, and over the HTTP/2 server
# engine's frame path (clang; build-fuzz/).
fuzz: deps
	fuzz/run.sh $(FUZZ_SECONDS)

# Sanitizer presets (CMakePresets.json): ASan+UBSan on unit/e2e/hardening, TSan on e2e/hardening.
test-asan: deps
	scripts/sanitize.sh asan

test-tsan: deps
	scripts/sanitize.sh tsan

# The compose demo for real (tests/packaging/compose_up.py): builds the images (base images from
# Debian's mirror with debootstrap when Docker Hub is out of reach), runs proxy, blue, green and
# Prometheus, walks a rollout with canaryctl inside the proxy container, always `down -v` at the
# end. Needs a running Docker engine (dockerd); not part of `make test`.
DOCKER_PACKAGES := docker.io docker-compose debootstrap
docker-deps:
	@$(MAKE) --no-print-directory deps PACKAGES="$(DOCKER_PACKAGES)" NEED_NODE=0

test-compose: docker-deps
	python3 tests/packaging/compose_up.py

# Memory over time (bench/soak.py): about 10 minutes of wrk with 50 000 sticky users, reloads,
# weight changes and backend restarts; prints the RSS curve, fails if RSS still grows after
# warm-up. Not in CI (too long).
soak: build
	@$(MAKE) --no-print-directory deps PACKAGES="wrk" NEED_NODE=0
	python3 bench/soak.py --build $(BUILD)

clean:
	rm -rf $(BUILD)
