# The two README commands (`make run`, `make test`) plus `make bench`. Each installs the Debian
# packages it needs when they are missing, configures with CMake + Ninja and builds.
BUILD ?= build
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

PACKAGES := g++ make cmake ninja-build pkg-config git ca-certificates python3 curl procps \
  libboost1.81-dev libboost-json1.81-dev libyaml-cpp-dev libspdlog-dev libre2-dev \
  libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev

.PHONY: deps build run test bench print-packages clean

print-packages:
	@echo $(PACKAGES)

deps:
	@missing=$$(for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing missing packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)
	cmake --build $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j2 --timeout 600

run: build
	scripts/run-demo.sh $(BUILD)/bin config/canary-demo.yaml

clean:
	rm -rf $(BUILD)
