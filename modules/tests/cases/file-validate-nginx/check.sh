set -euo pipefail
grep -q 'worker_processes 2;' "$ROOT/etc/nginx/nginx.conf"
[ ! -e "$ROOT/etc/nginx/cfgm-broken.conf" ]
[ ! -e "$ROOT/etc/nginx/.cfgm-broken.conf.cfgm-new" ]
chroot "$ROOT" nginx -t -q
