set -euo pipefail
[ ! -e "$ROOT/tmp/slept" ]
