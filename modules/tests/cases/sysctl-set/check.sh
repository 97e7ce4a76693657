set -euo pipefail
[ "$(cat "$ROOT/proc/sys/net/core/somaxconn")" = 1024 ]
[ "$(cat "$ROOT/proc/sys/net/ipv4/ip_local_port_range" | tr -s '\t ' ' ')" = "10240 65000" ]
[ "$(cat "$ROOT/proc/sys/net/ipv4/ip_forward")" = 1 ]
[ "$(cat "$ROOT/etc/sysctl.d/90-cfgm-net.core.somaxconn.conf")" = "net.core.somaxconn = 1024" ]
[ "$(cat "$ROOT/etc/sysctl.d/90-cfgm-net.ipv4.ip_local_port_range.conf")" = "net.ipv4.ip_local_port_range = 10240 65000" ]
[ "$(cat "$ROOT/etc/sysctl.d/90-cfgm-net.ipv4.ip_forward.conf")" = "net.ipv4.ip_forward = 1" ]
