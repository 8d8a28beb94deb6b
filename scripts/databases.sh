# Sourced by scripts/test: make sure PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) answer,
# starting the installed Debian servers when they are down. The KPI tests create and drop their own
# databases on them; where neither runs, those tests skip with the reason (or fail under CI=true).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 30); do port_open "$1" && return 0; sleep 0.5; done
  return 1
}

start_databases() {
  if ! port_open 5432 && command -v pg_ctlcluster >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "== starting PostgreSQL"
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$version" ]; then
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
      wait_port 5432 || echo "== PostgreSQL did not come up on 127.0.0.1:5432"
    fi
  fi
  if ! port_open 3306 && command -v mariadbd >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "== starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    wait_port 3306 || echo "== MariaDB did not come up on 127.0.0.1:3306"
  fi
}
