set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
# nginx as Debian installs it (default site enabled, running): what the
# package itself creates is there before the dry run, so the dry run and
# the apply see the same host (see "the dry run's blind spot").
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx >/dev/null
systemctl is-active --quiet nginx
[ -L /etc/nginx/sites-enabled/default ]
