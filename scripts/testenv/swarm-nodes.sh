#!/usr/bin/env bash
# Multi-node Swarm on one machine: network namespaces joined by a veth pair (addresses exist only
# inside them), one private dockerd per namespace (scripts/testenv/up.sh with DOCKERD_NETNS).
#   swarm-nodes.sh up   PREFIX STATE_A STATE_B   -> namespaces PREFIX-a (10.201.0.1), PREFIX-b (10.201.0.2)
#   swarm-nodes.sh down PREFIX STATE_A STATE_B   -> stops both dockerds (by pid file), removes the namespaces
set -euo pipefail
cd "$(dirname "$0")"
cmd=${1:?up|down}; prefix=${2:?PREFIX}; sa=${3:?STATE_A}; sb=${4:?STATE_B}
a=$prefix-a; b=$prefix-b
case $cmd in
up)
  for ns in "$a" "$b"; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip link add "$prefix-va" netns "$a" type veth peer name "$prefix-vb" netns "$b"
  ip -n "$a" addr add 10.201.0.1/24 dev "$prefix-va"; ip -n "$a" link set "$prefix-va" up
  ip -n "$b" addr add 10.201.0.2/24 dev "$prefix-vb"; ip -n "$b" link set "$prefix-vb" up
  DOCKERD_NETNS=$a ./up.sh --docker-only "$sa"
  DOCKERD_NETNS=$b ./up.sh --docker-only "$sb"
  ;;
down)
  ./down.sh --purge "$sb" >/dev/null 2>&1 || true
  ./down.sh --purge "$sa" >/dev/null 2>&1 || true
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  ;;
esac
