set -euo pipefail
source ../../lib/sysv-dummy.sh
install_cfgmdummy
