set -euo pipefail
printf '10240\t65000\n' > "$ROOT/proc/sys/net/ipv4/ip_local_port_range"
echo 4096 > "$ROOT/proc/sys/net/core/somaxconn"
echo 'net.ipv4.ip_local_port_range = 10240 65000' > "$ROOT/etc/sysctl.d/90-cfgm-net.ipv4.ip_local_port_range.conf"
