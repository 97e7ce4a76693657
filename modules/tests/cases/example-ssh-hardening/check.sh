set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
/usr/sbin/sshd -t
systemctl is-active --quiet ssh
/usr/sbin/sshd -T | grep -qx 'kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256'
/usr/sbin/sshd -T | grep -qx 'maxauthtries 2'
/usr/sbin/sshd -T | grep -qx 'allowgroups ssh-users'
[ "$(stat -c %a /etc/ssh/ssh_host_ed25519_key)" = 600 ]
[ ! -e /etc/ssh/ssh_host_ecdsa_key ]
! awk '$1 !~ /^#/ && $5 < 3071 { found = 1 } END { exit !found }' /etc/ssh/moduli
# A key login as a member of ssh-users, through the hardened client config.
id alice >/dev/null 2>&1 || useradd -m -G ssh-users -s /bin/sh alice
install -d -m 700 -o alice -g alice /home/alice/.ssh
rm -f /tmp/alice-key /tmp/alice-key.pub
ssh-keygen -q -t ed25519 -N '' -f /tmp/alice-key
install -m 600 -o alice -g alice /tmp/alice-key.pub /home/alice/.ssh/authorized_keys
[ "$(ssh -i /tmp/alice-key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null alice@127.0.0.1 echo logged-in 2>/dev/null)" = logged-in ]
# Root may not log in, whatever key it has.
! ssh -i /tmp/alice-key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1 true 2>/dev/null
