set -euo pipefail
# The container has no network: nginx and what it needs go into apt's cache
# now; pkg[nginx] installs them from there inside.
get() { chroot "$ROOT" apt-get install --download-only -y -q --no-install-recommends nginx >/dev/null; }
get || { chroot "$ROOT" apt-get update -q >/dev/null && get; }
ls "$ROOT"/var/cache/apt/archives/nginx_*.deb >/dev/null
