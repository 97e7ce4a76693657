#!/bin/bash
# A simulated fleet of SSH endpoints for the rollout benchmark
# (benches/rollout.rs): one real sshd (the Debian base image's, on an
# overlay of it) in a private mount and network namespace, reachable at
# every 127.0.0.0/8 address of that namespace's loopback only. Each
# address is one "host"; its agent keeps its own state directory (named
# after the address the connection came to), so every host really fetches,
# verifies, compiles and converges.
#
# Run by the bench after it moved itself into private mount and network
# namespaces (nothing mounted or listened on here is visible outside); the
# bench stops sshd when it is done. Usage: ssh-fleet.sh BASE WORK AGENT
set -euo pipefail
BASE=$1 WORK=$2 AGENT=$3
ip link set lo up
mount --make-rprivate /
mkdir -p "$WORK/upper" "$WORK/work" "$WORK/merged"
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$WORK/upper,workdir=$WORK/work" "$WORK/merged"
M=$WORK/merged
mount -t proc proc "$M/proc"
mkdir -p "$M/run/sshd" "$M/root/.ssh" "$M/etc/cfgm" "$M/var/lib/cfgm-bench" "$M/srv"
install -m 0755 "$AGENT" "$M/usr/local/bin/cfgm-agent"
cp -a "$WORK/states.git" "$M/srv/states.git"
cp "$WORK/allowed_signers" "$M/etc/cfgm/allowed_signers"
cat > "$M/etc/cfgm/agent.toml" <<EOF
repo = "/srv/states.git"
allowed_signers = "/etc/cfgm/allowed_signers"
state_dir = "/var/lib/cfgm-bench/default"
host = "h"
EOF
# Each "host" (the address the client dialled) has its own agent state.
cat > "$M/usr/local/bin/bench-agent" <<'EOF'
#!/bin/sh
addr=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
exec /usr/local/bin/cfgm-agent "$@" --state-dir "/var/lib/cfgm-bench/$addr"
EOF
chmod 0755 "$M/usr/local/bin/bench-agent"
install -m 0600 "$WORK/id_ed25519.pub" "$M/root/.ssh/authorized_keys"
chroot "$M" ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/bench_host_ed25519
cat > "$M/etc/ssh/sshd_config.bench" <<'EOF'
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/bench_host_ed25519
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 400:30:800
MaxSessions 20
LogLevel ERROR
EOF
chroot "$M" /usr/sbin/sshd -f /etc/ssh/sshd_config.bench -E /var/log/sshd-bench.log
KEY=$(cut -d' ' -f1,2 "$M/etc/ssh/bench_host_ed25519.pub")
for a in $(cat "$WORK/addresses"); do echo "$a $KEY"; done > "$WORK/known_hosts"
for _ in $(seq 50); do
    if (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null; then break; fi
    sleep 0.1
done
echo "sshd up in $M"
