set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
# The base has openssh-server but no host keys yet (made at first boot
# elsewhere); only ed25519 and rsa here, so the ecdsa pair stays absent.
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
ssh-keygen -q -t rsa -b 3072 -N '' -f /etc/ssh/ssh_host_rsa_key
chmod 0644 /etc/ssh/ssh_host_ed25519_key
mkdir -p /run/sshd
systemctl start ssh 2>/dev/null || true
