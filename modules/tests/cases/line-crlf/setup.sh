set -euo pipefail
printf '[s]\r\na=1\r\nb=2\r\n' > "$ROOT/etc/cfgm-crlf.ini"
printf 'one\r\ndrop me\ntwo\rstill two\nlast' > "$ROOT/etc/cfgm-mixed.txt"
