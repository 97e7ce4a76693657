set -euo pipefail
# The container has no network: cron and what it needs go into apt's cache
# now, and pkg[cron] installs them from there inside (lists refreshed once
# if the base's are stale).
get() { chroot "$ROOT" apt-get install --download-only -y -q --no-install-recommends cron >/dev/null; }
get || { chroot "$ROOT" apt-get update -q >/dev/null && get; }
ls "$ROOT"/var/cache/apt/archives/cron_*.deb
