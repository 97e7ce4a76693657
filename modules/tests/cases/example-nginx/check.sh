set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
nginx -t -q
systemctl is-active --quiet nginx
# Debian's default site is gone, ours is enabled.
[ ! -e /etc/nginx/sites-enabled/default ]
[ "$(readlink /etc/nginx/sites-enabled/www.conf)" = /etc/nginx/sites-available/www.conf ]
# The directives in data order: user first.
[ "$(sed -n 2p /etc/nginx/nginx.conf)" = "user www-data;" ]
# An HTTP 200 with our page (bash's /dev/tcp: the base has no curl). A
# reload swaps workers in the background: ask again for a few seconds.
get() {
  exec 3<>/dev/tcp/127.0.0.1/80
  printf 'GET / HTTP/1.0\r\nHost: www.example.org\r\n\r\n' >&3
  cat <&3
  exec 3>&-
}
for _ in $(seq 50); do
  reply=$(get)
  if printf '%s' "$reply" | grep -q '<p>www on web1</p>'; then break; fi
  sleep 0.1
done
printf '%s' "$reply" | head -1 | grep -q '^HTTP/1.1 200'
printf '%s' "$reply" | grep -q '<p>www on web1</p>'
