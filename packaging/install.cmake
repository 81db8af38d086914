# install() rules and CPack: `make package` (cmake --build build --target package) writes
# build/canary-proxy_<version>_<arch>.deb. Included by the top-level CMakeLists.txt.
#
# Layout (Debian): binaries in /usr/bin, the example config as a conffile in /etc/canary-proxy,
# the systemd unit in /lib/systemd/system, docs in /usr/share/doc/canary-proxy. The /etc and /lib
# paths are absolute on purpose: they do not move with the install prefix (the unit's ExecStart
# names /usr/bin, the package's prefix). So `cmake --install` outside CPack writes them as they
# are: stage such an install with DESTDIR.
include(GNUInstallDirs)

set(CANARY_PACKAGING_DIR ${CMAKE_CURRENT_LIST_DIR})
set(CANARY_CONFIG_DIR /etc/canary-proxy)
set(CANARY_UNIT_DIR /lib/systemd/system)

install(TARGETS canary-proxy canaryctl demo-backend RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CANARY_PACKAGING_DIR}/canary-proxy.yaml
  DESTINATION ${CANARY_CONFIG_DIR} RENAME config.yaml)
install(FILES ${CANARY_PACKAGING_DIR}/canary-proxy.service DESTINATION ${CANARY_UNIT_DIR})
install(FILES ${CMAKE_SOURCE_DIR}/docs/config-reference.md ${CMAKE_SOURCE_DIR}/docs/docker.md
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/canary-proxy)

# Maintainer scripts and conffiles, generated so they need no executable bit in the source tree.
set(CANARY_DEBIAN_DIR ${CMAKE_BINARY_DIR}/packaging/debian)
file(WRITE ${CANARY_DEBIAN_DIR}/conffiles "${CANARY_CONFIG_DIR}/config.yaml\n")
# The service is not started on install: the example config points at upstreams that do not exist
# yet. Edit /etc/canary-proxy/config.yaml, then `systemctl enable --now canary-proxy`.
file(WRITE ${CANARY_DEBIAN_DIR}/postinst [=[#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
  # An upgrade restarts a running proxy (it keeps its rollout state) and leaves a stopped one alone.
  if [ -n "$2" ]; then
    systemctl try-restart canary-proxy.service >/dev/null || true
  fi
fi
exit 0
]=])
file(WRITE ${CANARY_DEBIAN_DIR}/prerm [=[#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop canary-proxy.service >/dev/null 2>&1 || true
fi
exit 0
]=])
file(WRITE ${CANARY_DEBIAN_DIR}/postrm [=[#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
  systemctl disable canary-proxy.service >/dev/null 2>&1 || true
  # DynamicUser=yes keeps the state in /var/lib/private/canary-proxy (/var/lib/canary-proxy links to it).
  rm -rf /var/lib/private/canary-proxy /var/lib/canary-proxy
fi
exit 0
]=])
file(CHMOD ${CANARY_DEBIAN_DIR}/postinst ${CANARY_DEBIAN_DIR}/prerm ${CANARY_DEBIAN_DIR}/postrm
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
  WORLD_EXECUTE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME canary-proxy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "canary-proxy")
set(CANARY_PACKAGE_MAINTAINER "canary-proxy maintainers <canary-proxy@localhost>" CACHE STRING
  "Maintainer field of the .deb (Name <email>)")
set(CPACK_PACKAGE_CONTACT "${CANARY_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "HTTP/1.1 reverse proxy that runs canary releases by itself")
# One string (a CMake list would show its ";"), wrapped by hand: CPack keeps the lines as they are.
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "canary-proxy sits in front of a stable and a canary version of a service,\n"
  "splits traffic between them (weighted round-robin, header and cookie\n"
  "overrides, optional stickiness) and moves the canary weight through rollout\n"
  "steps (setWeight, pause) driven by its own control API: what Argo Rollouts\n"
  "does with an ingress controller, without Kubernetes. It exports Prometheus\n"
  "metrics and serves a dashboard.\n"
  "Includes canaryctl (the control API's command line), demo-backend (a demo\n"
  "service) and a hardened systemd unit.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends is computed from the binaries' shared libraries (dpkg-shlibdeps, from dpkg-dev) and
# appended to this: procps ships /bin/kill, the unit's ExecReload.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "procps")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CANARY_DEBIAN_DIR}/conffiles ${CANARY_DEBIAN_DIR}/postinst ${CANARY_DEBIAN_DIR}/prerm
  ${CANARY_DEBIAN_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Only the /usr tree is owned by the package's prefix; the other absolute paths are intended.
set(CPACK_WARN_ON_ABSOLUTE_INSTALL_DESTINATION OFF)
set(CPACK_PACKAGE_CHECKSUM SHA256)
include(CPack)
