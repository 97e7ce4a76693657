set -euo pipefail
[ ! -e "$ROOT/srv/old" ]
