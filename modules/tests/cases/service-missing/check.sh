set -euo pipefail
[ ! -e "$ROOT/tmp/after-svc" ]
