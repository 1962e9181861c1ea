#!/usr/bin/env bash
# Build a tiny nginx image from this machine's own nginx binary and its shared libraries (no
# registry, no debootstrap: under a second) and `docker import` it into STATE's dockerd.
# Usage: nginx-image.sh STATE [TAG]      (up.sh must have run; TAG default local/nginx:host)
set -euo pipefail
STATE=$(cd "${1:?STATE}" && pwd); TAG=${2:-local/nginx:host}
export DOCKER_HOST=unix://$STATE/docker.sock
docker image inspect "$TAG" >/dev/null 2>&1 && { echo "image $TAG present"; exit 0; }
R=$(mktemp -d "$STATE/nginx-rootfs.XXXXXX"); trap 'rm -rf "$R"' EXIT
NGINX=$(command -v nginx)
mkdir -p "$R"/{etc/nginx/conf.d,run,tmp,var/log/nginx,var/lib/nginx,usr/sbin,bin}
cp "$NGINX" "$R/usr/sbin/nginx"
for lib in $(ldd "$NGINX" | grep -o '/[^ ]*'); do mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"; done
cp /etc/nginx/mime.types "$R/etc/nginx/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
chmod 1777 "$R/tmp"
cat >"$R/etc/nginx/nginx.conf" <<'CONF'
user root;
worker_processes 1;
pid /run/nginx.pid;
error_log /dev/stderr notice;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    include /etc/nginx/conf.d/*.conf;
}
CONF
tar -C "$R" -c . | docker import -c 'CMD ["/usr/sbin/nginx","-g","daemon off;"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/bin' - "$TAG" >/dev/null
echo "image $TAG imported"
