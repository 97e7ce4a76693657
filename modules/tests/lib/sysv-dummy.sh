# Sourced by the sysvinit service cases (cwd: the case directory):
# install_cfgmdummy puts /etc/init.d/cfgmdummy in $ROOT, a sleeping daemon
# run by start-stop-daemon that logs restarts and reloads to
# /var/log/cfgmdummy.log.
install_cfgmdummy() {
cat > "$ROOT/etc/init.d/cfgmdummy" <<'EOF'
#!/bin/sh
### BEGIN INIT INFO
# Provides:          cfgmdummy
# Required-Start:
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: a sleeping daemon for cfgm's tests
### END INIT INFO
PID=/run/cfgmdummy.pid
case "$1" in
  start) start-stop-daemon --start --quiet --oknodo --background --make-pidfile --pidfile $PID --exec /usr/bin/sleep -- 100000 ;;
  stop) start-stop-daemon --stop --quiet --oknodo --retry 5 --pidfile $PID --remove-pidfile ;;
  status) start-stop-daemon --status --pidfile $PID ;;
  restart) $0 stop && $0 start && echo restarted >> /var/log/cfgmdummy.log ;;
  reload) echo reloaded >> /var/log/cfgmdummy.log ;;
  *) echo "usage: $0 start|stop|status|restart|reload" >&2; exit 2 ;;
esac
EOF
chmod 755 "$ROOT/etc/init.d/cfgmdummy"
}
