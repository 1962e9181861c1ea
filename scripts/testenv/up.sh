#!/usr/bin/env bash
# Bring up a private, loopback-only end-to-end test environment:
#   - a private dockerd (own socket, data-root, exec-root, pidfile under STATE)
#   - a tiny local image local/busybox:latest (imported from busybox-static, no registry)
#   - pebble-challtestsrv (mock DNS on 127.0.0.1, every name -> 127.0.0.1, no AAAA)
#   - pebble (ACME test CA) on https://127.0.0.1:14000/dir, mgmt on :15000
#   - optionally (--nginx) an nginx on 127.0.0.1:$HTTP01_PORT serving
#     /.well-known/acme-challenge/ from STATE/www/$host/ and including STATE/nginx/conf.d/*.conf
# Idempotent: re-running skips whatever is already installed/running.
# Writes STATE/env (source it). Stop everything with down.sh STATE.
#
# Usage: up.sh [--nginx] [--docker-only] [--install-only] [STATE]
#   --docker-only: just the packages, dockerd and the image (no pki, pebble, challtestsrv)
#   --install-only: just the packages        (STATE default: $TESTENV_STATE or /tmp/testenv)
# Port overrides (env): PEBBLE_PORT PEBBLE_MGMT_PORT HTTP01_PORT TLSALPN_PORT DNS_PORT CHALL_MGMT_PORT
# Pebble knobs passed through if set: PEBBLE_AUTHZREUSE PEBBLE_CHAIN_LENGTH PEBBLE_ALTERNATE_ROOTS
#   PEBBLE_VA_ALWAYS_VALID; CERT_VALIDITY_SECONDS -> certificateValidityPeriod (default 5y).
set -euo pipefail

WITH_NGINX=${TESTENV_NGINX:-0}
DOCKER_ONLY=0
STATE=""
for a in "$@"; do
  case "$a" in
    --nginx) WITH_NGINX=1 ;;
    --docker-only) DOCKER_ONLY=1 ;;
    --install-only) install_only=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) STATE="$a" ;;
  esac
done
STATE=${STATE:-${TESTENV_STATE:-/tmp/testenv}}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
chmod 755 "$STATE"   # nginx workers (user nobody) must be able to traverse it

PEBBLE_PORT=${PEBBLE_PORT:-14000}
PEBBLE_MGMT_PORT=${PEBBLE_MGMT_PORT:-15000}
HTTP01_PORT=${HTTP01_PORT:-5002}
TLSALPN_PORT=${TLSALPN_PORT:-5001}
DNS_PORT=${DNS_PORT:-8053}
CHALL_MGMT_PORT=${CHALL_MGMT_PORT:-8055}
IMAGE=${TESTENV_IMAGE:-local/busybox:latest}

RUN=$STATE/run; LOG=$STATE/log; PKI=$STATE/pki
mkdir -p "$RUN" "$LOG" "$PKI" "$STATE/pebble" "$STATE/www"
SOCK=$STATE/docker.sock
export DOCKER_HOST=unix://$SOCK

say() { printf '[testenv %(%T)T] %s\n' -1 "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
T0=$(now)
elapsed() { printf '%.2fs' "$(echo "$(now) - $1" | bc)"; }

running() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
alive() { # alive PIDFILE COMM_REGEX -> 0 if the pid in it is a live (non-zombie) process with that name
  local p; [ -s "$1" ] && p=$(cat "$1") && [ -n "$p" ] && running "$p" \
    && grep -Eq "$2" "/proc/$p/comm" 2>/dev/null
}
port_busy() { # port_busy tcp|udp PORT
  local flag=-Hltn; [ "$1" = udp ] && flag=-Hlun
  [ -n "$(ss $flag "sport = :$2" 2>/dev/null)" ]
}
wait_for() { # wait_for SECONDS DESC PID|- CMD...   (fails early if PID dies)
  local limit=$1 desc=$2 pid=$3; shift 3
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$pid" = - ] || running "$pid" || die "$desc exited; see $LOG/ (last lines: $(tail -3 "$LOG"/*.log 2>/dev/null | tr '\n' ' ' | cut -c1-400))"
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${limit}s waiting for $desc (see $LOG)"
    sleep 0.1
  done
}
# start_bg NAME PIDFILE|- CMD... : start detached (own session, no inherited stdio, log LOG/NAME.log)
# and record its pid in PIDFILE ('-': the program writes its own pid file). BGPID = its pid.
start_bg() {
  local name=$1 pidfile=$2; shift 2
  setsid "$@" >"$LOG/$name.log" 2>&1 </dev/null &
  BGPID=$!
  [ "$pidfile" = - ] || echo "$BGPID" >"$pidfile"
}

# ---------------------------------------------------------------- packages
install_packages() {
  local t; t=$(now)
  # docker-compose (v1) and debootstrap: tests/compose.rs builds the repo's images from a local Debian
  # base (scripts/images.sh) and starts docker-compose.yml, with nothing pulled.
  local want=(docker.io pebble nginx busybox-static openssl curl ca-certificates iproute2 bc docker-compose debootstrap)
  local missing=() p
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "packages present"; return; fi
  say "installing: ${missing[*]}"
  # never let package postinst start system services (dockerd with a bridge, nginx on :80)
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOG/apt.log" 2>&1 \
    || { tail -20 "$LOG/apt.log" >&2; die "apt-get install failed"; }
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  say "packages installed in $(elapsed "$t")"
}

# ---------------------------------------------------------------- dockerd
start_dockerd() {
  local t; t=$(now)
  if alive "$RUN/dockerd.pid" "^dockerd$" && docker version >/dev/null 2>&1; then say "dockerd already running"; return; fi
  # exec-root MUST differ from the default /var/run/docker (another dockerd may own it);
  # no bridge/iptables: containers use --network host (loopback) or none.
  rm -f "$SOCK"
  rm -f "$RUN/dockerd.pid"
  local tcp=()   # DOCKER_TCP_PORT: also listen on tcp://127.0.0.1:PORT (loopback only, for tests)
  [ -n "${DOCKER_TCP_PORT:-}" ] && tcp=(--host "tcp://127.0.0.1:$DOCKER_TCP_PORT")
  local netns=()  # DOCKERD_NETNS: run dockerd inside that network namespace (multi-node Swarm tests)
  # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup mounts dockerd needs.
  [ -n "${DOCKERD_NETNS:-}" ] && netns=(nsenter "--net=/run/netns/$DOCKERD_NETNS")
  start_bg dockerd - "${netns[@]}" dockerd \
    --data-root "$STATE/docker-data" \
    --exec-root "$STATE/docker-exec" \
    --host "unix://$SOCK" "${tcp[@]}" \
    --pidfile "$RUN/dockerd.pid" \
    --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
    --userland-proxy=false --log-level warn
  wait_for 60 dockerd "$BGPID" docker version
  say "dockerd up in $(elapsed "$t") ($SOCK)"
}

build_image() {
  local t; t=$(now)
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then say "image $IMAGE present"; return; fi
  local r=$STATE/busybox-rootfs
  rm -rf "$r"; mkdir -p "$r"/{bin,etc,tmp,root,proc,sys,dev,var/www}
  cp /bin/busybox "$r/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  chmod 1777 "$r/tmp"
  tar -C "$r" -c . | docker import \
      -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
  rm -rf "$r"
  say "image $IMAGE imported in $(elapsed "$t")"
}

# ---------------------------------------------------------------- TLS for pebble's own listeners
make_pki() {
  if [ -s "$PKI/ca.pem" ] && [ -s "$PKI/localhost.pem" ] && [ -s "$PKI/localhost.key" ]; then
    say "pki present"; return
  fi
  local t; t=$(now)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -subj "/CN=testenv pebble listener CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$PKI/localhost.key" -out "$PKI/localhost.csr" -subj "/CN=localhost" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" >"$PKI/localhost.ext"
  openssl x509 -req -in "$PKI/localhost.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 3650 -extfile "$PKI/localhost.ext" \
    -out "$PKI/localhost.pem" 2>/dev/null
  rm -f "$PKI/localhost.csr"
  say "pki generated in $(elapsed "$t")"
}

# ---------------------------------------------------------------- pebble + challtestsrv
start_challtestsrv() {
  if alive "$RUN/challtestsrv.pid" "^pebble-chall"; then say "pebble-challtestsrv already running"; return; fi
  port_busy udp "$DNS_PORT" && die "udp port $DNS_PORT busy (another challtestsrv?)"
  port_busy tcp "$CHALL_MGMT_PORT" && die "tcp port $CHALL_MGMT_PORT busy"
  # DNS only: every A query -> 127.0.0.1, no AAAA (pebble 2.4 dials the FIRST address and puts
  # AAAA first, so the default ::1 would send HTTP-01 to [::1]:PORT). Own http/tls servers off.
  start_bg challtestsrv "$RUN/challtestsrv.pid" pebble-challtestsrv \
    -dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" -tlsalpn01 "" \
    -management "127.0.0.1:$CHALL_MGMT_PORT" \
    -defaultIPv4 127.0.0.1 -defaultIPv6 ""
  wait_for 20 challtestsrv "$BGPID" curl -sf -o /dev/null -X POST -d '{"host":"probe.test"}' \
    "http://127.0.0.1:$CHALL_MGMT_PORT/dns-request-history"
  say "pebble-challtestsrv up (dns 127.0.0.1:$DNS_PORT, mgmt :$CHALL_MGMT_PORT)"
}

start_pebble() {
  local t; t=$(now)
  if alive "$RUN/pebble.pid" "^pebble$"; then say "pebble already running"; return; fi
  port_busy tcp "$PEBBLE_PORT" && die "tcp port $PEBBLE_PORT busy"
  port_busy tcp "$PEBBLE_MGMT_PORT" && die "tcp port $PEBBLE_MGMT_PORT busy"
  local validity=""
  [ -n "${CERT_VALIDITY_SECONDS:-}" ] && validity=",
    \"certificateValidityPeriod\": ${CERT_VALIDITY_SECONDS}"
  cat >"$STATE/pebble/pebble-config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$PEBBLE_PORT",
    "managementListenAddress": "127.0.0.1:$PEBBLE_MGMT_PORT",
    "certificate": "$PKI/localhost.pem",
    "privateKey": "$PKI/localhost.key",
    "httpPort": $HTTP01_PORT,
    "tlsPort": $TLSALPN_PORT,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false$validity
  }
}
EOF
  local envs=(PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT="${PEBBLE_WFE_NONCEREJECT:-0}")
  local v
  for v in PEBBLE_AUTHZREUSE PEBBLE_CHAIN_LENGTH PEBBLE_ALTERNATE_ROOTS PEBBLE_VA_ALWAYS_VALID PEBBLE_WFE_ORDERS_PER_PAGE; do
    [ -n "${!v:-}" ] && envs+=("$v=${!v}")
  done
  cd "$STATE/pebble"
  start_bg pebble "$RUN/pebble.pid" env "${envs[@]}" pebble \
      -config "$STATE/pebble/pebble-config.json" -dnsserver "127.0.0.1:$DNS_PORT"
  cd - >/dev/null
  wait_for 30 pebble "$BGPID" curl -sf --cacert "$PKI/ca.pem" -o /dev/null "https://127.0.0.1:$PEBBLE_PORT/dir"
  wait_for 30 "pebble roots" "$BGPID" curl -sf --cacert "$PKI/ca.pem" -o /dev/null "https://127.0.0.1:$PEBBLE_MGMT_PORT/roots/0"
  say "pebble up in $(elapsed "$t") (https://127.0.0.1:$PEBBLE_PORT/dir)"
}

# ---------------------------------------------------------------- optional nginx
start_nginx() {
  local n=$STATE/nginx
  mkdir -p "$n/conf.d" "$n/tmp"
  if alive "$n/nginx.pid" "^nginx"; then say "nginx already running"; return; fi
  port_busy tcp "$HTTP01_PORT" && die "tcp port $HTTP01_PORT busy (stale nginx? run down.sh $STATE)"
  cat >"$n/nginx.conf" <<EOF
# generated by testenv/up.sh
worker_processes 1;
pid $n/nginx.pid;
error_log $n/error.log notice;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $n/access.log;
    client_body_temp_path $n/tmp/body;
    proxy_temp_path $n/tmp/proxy;
    fastcgi_temp_path $n/tmp/fastcgi;
    uwsgi_temp_path $n/tmp/uwsgi;
    scgi_temp_path $n/tmp/scgi;
    server {
        listen 127.0.0.1:$HTTP01_PORT default_server;
        server_name _;
        location ^~ /.well-known/acme-challenge/ {
            root $STATE/www/\$host;
            default_type text/plain;
            try_files \$uri =404;
        }
        location / { return 404; }
    }
    include $n/conf.d/*.conf;
}
EOF
  nginx -t -q -e "$n/error.log" -p "$n" -c "$n/nginx.conf"
  nginx -e "$n/error.log" -p "$n" -c "$n/nginx.conf"
  wait_for 10 nginx - curl -s -o /dev/null "http://127.0.0.1:$HTTP01_PORT/"
  say "nginx up (127.0.0.1:$HTTP01_PORT, conf $n/nginx.conf, reload: nginx -e $n/error.log -p $n -c $n/nginx.conf -s reload)"
}

write_env() {
  {
    echo "# generated by testenv/up.sh $(date -u +%FT%TZ)"
    echo "export TESTENV_STATE=$STATE"
    echo "export DOCKER_HOST=unix://$SOCK"
    echo "export TESTENV_IMAGE=$IMAGE"
    echo "export ACME_DIRECTORY_URL=https://127.0.0.1:$PEBBLE_PORT/dir"
    echo "export ACME_DIRECTORY_CA=$PKI/ca.pem            # trust this for the directory's TLS"
    echo "export PEBBLE_MGMT_URL=https://127.0.0.1:$PEBBLE_MGMT_PORT"
    echo "export PEBBLE_ROOT_URL=https://127.0.0.1:$PEBBLE_MGMT_PORT/roots/0   # issuing root (changes on each pebble start)"
    echo "export PEBBLE_INTERMEDIATE_URL=https://127.0.0.1:$PEBBLE_MGMT_PORT/intermediates/0"
    echo "export ACME_HTTP01_PORT=$HTTP01_PORT"
    echo "export CHALLTESTSRV_URL=http://127.0.0.1:$CHALL_MGMT_PORT"
    echo "export TESTENV_WWW=$STATE/www                # challenge files: \$TESTENV_WWW/<host>/.well-known/acme-challenge/<token>"
    if [ "$WITH_NGINX" = 1 ]; then
      echo "export NGINX_PREFIX=$STATE/nginx"
      echo "export NGINX_CONF=$STATE/nginx/nginx.conf"
      echo "export NGINX_CONF_D=$STATE/nginx/conf.d"
      echo "export NGINX_PID=$STATE/nginx/nginx.pid"
    fi
  } >"$STATE/env"
}

install_packages
[ "${install_only:-0}" = 1 ] && exit 0
command -v docker >/dev/null || die "no docker CLI"
start_dockerd
build_image
if [ "$DOCKER_ONLY" = 1 ]; then write_env; say "docker ready in $(elapsed "$T0"); source $STATE/env"; exit 0; fi
make_pki
start_challtestsrv
start_pebble
[ "$WITH_NGINX" = 1 ] && start_nginx
write_env
say "ready in $(elapsed "$T0"); source $STATE/env"
