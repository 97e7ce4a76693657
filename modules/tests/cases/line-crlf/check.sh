set -euo pipefail
printf '[s]\r\na=10\r\nb=2\r\nc=3\r\n' | cmp - "$ROOT/etc/cfgm-crlf.ini"
printf 'one\r\ntwo\rstill two\nlast' | cmp - "$ROOT/etc/cfgm-mixed.txt"
