set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
# The base has openssh-server but no host keys (each fleet host makes its
# own at start), so ssh.service fails and restarts from boot on until it
# hits systemd's start limit; how far it got depends on how long the boot
# took. Stop that loop and clear its count, then start sshd with keys.
systemctl stop ssh
systemctl reset-failed ssh
# Only ed25519 and rsa here, so the ecdsa pair stays absent.
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
ssh-keygen -q -t rsa -b 3072 -N '' -f /etc/ssh/ssh_host_rsa_key
mkdir -p /run/sshd
systemctl start ssh
systemctl is-active --quiet ssh
# The drift the example repairs: a private host key readable by all (sshd,
# already running, keeps the key it loaded).
chmod 0644 /etc/ssh/ssh_host_ed25519_key
