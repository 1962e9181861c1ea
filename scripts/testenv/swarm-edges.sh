#!/usr/bin/env bash
# Three Swarm nodes on one machine for the shared-certificate test: network namespaces PREFIX-a/b/c
# (10.202.0.1/.2/.3, addresses only inside them) on a bridge in PREFIX-hub, one private dockerd
# each (up.sh with DOCKERD_NETNS). The root namespace reaches 10.202.0.0/24 through a veth into
# the hub that carries no address (Pebble validates HTTP-01 against a node, vhostd self-checks).
#   swarm-edges.sh up   PREFIX STATE_A STATE_B STATE_C
#   swarm-edges.sh down PREFIX STATE_A STATE_B STATE_C   -> dockerds stopped by pid file, namespaces removed
set -euo pipefail
cd "$(dirname "$0")"
cmd=${1:?up|down}; p=${2:?PREFIX}; shift 2
states=("$@"); [ ${#states[@]} -eq 3 ] || { echo "three state dirs" >&2; exit 2; }
names=(a b c)
case $cmd in
up)
  hub=$p-hub
  ip netns del "$hub" 2>/dev/null || true; ip netns add "$hub"; ip -n "$hub" link set lo up
  ip -n "$hub" link add br0 type bridge; ip -n "$hub" link set br0 up
  for i in 0 1 2; do
    n=${names[$i]}; ns=$p-$n
    ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up
    ip link add "$p-$n" netns "$ns" type veth peer name "h$n" netns "$hub"
    ip -n "$hub" link set "h$n" master br0 up
    ip -n "$ns" addr add "10.202.0.$((i + 1))/24" dev "$p-$n"; ip -n "$ns" link set "$p-$n" up
    ip -n "$ns" route add default dev "$p-$n"   # replies to the root namespace's address
  done
  ip link del "$p-r" 2>/dev/null || true
  ip link add "$p-r" type veth peer name hr netns "$hub"
  ip -n "$hub" link set hr master br0 up; ip link set "$p-r" up
  ip route add 10.202.0.0/24 dev "$p-r"
  for i in 0 1 2; do DOCKERD_NETNS=$p-${names[$i]} ./up.sh --docker-only "${states[$i]}"; done
  ;;
down)
  for i in 2 1 0; do ./down.sh --purge "${states[$i]}" >/dev/null 2>&1 || true; done
  ip link del "$p-r" 2>/dev/null || true
  for n in a b c hub; do ip netns del "$p-$n" 2>/dev/null || true; done
  ;;
esac
