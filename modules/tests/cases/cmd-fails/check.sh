set -euo pipefail
[ ! -e "$ROOT/etc/after-broken" ]
