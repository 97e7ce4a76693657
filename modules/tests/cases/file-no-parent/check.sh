set -euo pipefail
[ ! -e "$ROOT/etc/nosuchdir" ]
[ ! -e "$ROOT/tmp/after" ]
