set -euo pipefail
# Every write landed inside the root ($OUTSIDE is checked by the runner).
[ "$(cat "$ROOT$OUTSIDE/abs/app.conf")" = new ]
[ "$(cat "$ROOT$OUTSIDE/abs/created.conf")" = created ]
[ "$(cat "$ROOT/outside/rel/app.conf")" = new ]
[ "$(cat "$ROOT/run/cfgm-escape-probe")" = probe ]
[ ! -e /run/cfgm-escape-probe ]
# The backups hold the old content from inside the root, never what is outside.
backups=$(find "$STATE/backups" -type f ! -name '.*')
[ "$(echo "$backups" | wc -l)" = 2 ]
for b in $backups; do [ "$(cat "$b")" = inside ]; done
