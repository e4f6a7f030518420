#!/bin/sh
# make cluster: switchboard on several nodes behind nginx, sharing state through Redis and
# PostgreSQL (SPEC 13), on this machine: Debian's redis-server, a PostgreSQL instance (initdb into
# var/cluster/pg the first time, kept across runs), CLUSTER_NODES switchboard processes (2 by
# default) and nginx on CLUSTER_PORT (8080) proxying HTTP and WebSocket upgrades to them
# round-robin, plus switchboard-sim when there is no OpenAI key. Everything runs in the foreground
# from var/cluster/ (logs there too); Ctrl-C stops all of it. PostgreSQL refuses to run as root:
# as root it runs as the `postgres` user the Debian package makes.
#
# Environment: CLUSTER_PORT (8080), CLUSTER_NODES (2), CLUSTER_NODE_PORT (8081: the first node's
# port, the next ones follow), CLUSTER_REDIS_PORT (6380), CLUSTER_PG_PORT (5433), CLUSTER_PG=0
# (each node keeps its records in its own SQLite file instead), CLUSTER_DIR (var/cluster),
# CLUSTER_SIM_MODE (agent; echo for load tests), and any SWITCHBOARD_* variable, which every node
# gets.
set -eu
BIN=${SWITCHBOARD_BIN_DIR:-build/bin}
PORT=${CLUSTER_PORT:-8080}
NODES=${CLUSTER_NODES:-2}
NODE_PORT=${CLUSTER_NODE_PORT:-8081}
REDIS_PORT=${CLUSTER_REDIS_PORT:-6380}
PG_PORT=${CLUSTER_PG_PORT:-5433}
USE_PG=${CLUSTER_PG:-1}
SIM_PORT=${SWITCHBOARD_SIM_PORT:-9090}
DIR=${CLUSTER_DIR:-var/cluster}
HOST=127.0.0.1

for cmd in redis-server nginx; do
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || {
        echo "cluster: $cmd is missing (scripts/deps.sh installs it)" >&2
        exit 1
    }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ "$USE_PG" = 1 ] && [ -z "$PG_BIN" ]; then
    echo "cluster: PostgreSQL is missing (scripts/deps.sh installs it)" >&2
    exit 1
fi

mkdir -p "$DIR/nginx-tmp"
DIR=$(cd "$DIR" && pwd)
pids=""
pg_pid=""
cleanup() {
    trap - INT TERM EXIT
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    # PostgreSQL's fast shutdown (SIGTERM would wait for the nodes' connections to end).
    [ -n "$pg_pid" ] && kill -INT "$pg_pid" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# Redis: nothing persisted; a restart is an empty Redis, which the nodes refill.
redis-server --port "$REDIS_PORT" --bind "$HOST" --save "" --appendonly no --dir "$DIR" \
    --logfile "$DIR/redis.log" &
pids="$pids $!"

# PostgreSQL: one database, kept in $DIR/pg across runs; the nodes apply the schema themselves.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=postgres --regid=postgres --clear-groups sh -c "$*"
    else
        sh -c "$*"
    fi
}
if [ "$USE_PG" = 1 ]; then
    mkdir -p "$DIR/pg"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$DIR/pg"
        # The postgres user must be able to pass through $DIR (a mktemp -d folder is 0700).
        as_pg "test -x '$DIR'" 2>/dev/null || chmod o+x "$DIR"
        as_pg "test -w '$DIR/pg'" 2>/dev/null || {
            echo "cluster: the postgres user cannot reach $DIR/pg (a parent folder is private)" >&2
            exit 1
        }
    fi
    if [ ! -f "$DIR/pg/data/PG_VERSION" ]; then
        as_pg "'$PG_BIN/initdb' -D '$DIR/pg/data' -A trust -U sb -E UTF8 --locale=C.UTF-8" \
            >"$DIR/pg/initdb.log" 2>&1 || {
            echo "cluster: initdb failed (see $DIR/pg/initdb.log)" >&2
            exit 1
        }
    fi
    as_pg "exec '$PG_BIN/postgres' -D '$DIR/pg/data' -p $PG_PORT -k '$DIR/pg' \
        -c listen_addresses=$HOST" >"$DIR/postgres.log" 2>&1 &
    pg_pid=$!
    i=0
    until psql -h "$HOST" -p "$PG_PORT" -U sb -d postgres -Atqc "SELECT 1" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -gt 100 ] && { echo "cluster: PostgreSQL did not start (see $DIR/postgres.log)" >&2; exit 1; }
        sleep 0.1
    done
    psql -h "$HOST" -p "$PG_PORT" -U sb -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = 'switchboard'" | grep -q 1 ||
        psql -h "$HOST" -p "$PG_PORT" -U sb -d postgres -qc "CREATE DATABASE switchboard"
    export SWITCHBOARD_DATABASE_URL="postgres://sb@$HOST:$PG_PORT/switchboard"
fi

if [ -z "${OPENAI_API_KEY:-}" ] && [ -z "${SWITCHBOARD_REALTIME_URL:-}" ]; then
    "$BIN/switchboard-sim" --port "$SIM_PORT" --mode "${CLUSTER_SIM_MODE:-agent}" --quiet \
        >"$DIR/sim.log" 2>&1 &
    pids="$pids $!"
    export OPENAI_API_KEY=sk-sim-local
    export SWITCHBOARD_REALTIME_URL="ws://$HOST:$SIM_PORT/v1/realtime"
    export SWITCHBOARD_OPENAI_BASE_URL="http://$HOST:$SIM_PORT/v1"
    echo "cluster: using switchboard-sim on port $SIM_PORT (no OPENAI_API_KEY set)"
fi

# The nodes trust nginx's X-Forwarded-For (per-IP limits count callers, not the proxy) and know
# the public URL and origin are nginx's.
export SWITCHBOARD_REDIS_URL="redis://$HOST:$REDIS_PORT"
export SWITCHBOARD_TRUSTED_PROXIES="${SWITCHBOARD_TRUSTED_PROXIES:-$HOST/32}"
export SWITCHBOARD_PUBLIC_URL="${SWITCHBOARD_PUBLIC_URL:-http://$HOST:$PORT}"
export SWITCHBOARD_ALLOWED_ORIGINS="${SWITCHBOARD_ALLOWED_ORIGINS:-http://$HOST:$PORT,http://localhost:$PORT}"
servers=""
i=1
while [ "$i" -le "$NODES" ]; do
    p=$((NODE_PORT + i - 1))
    SWITCHBOARD_HOST=$HOST SWITCHBOARD_PORT=$p SWITCHBOARD_NODE_ID="node-$i" \
        SWITCHBOARD_DB="$DIR/node-$i.db" "$BIN/switchboard" >"$DIR/node-$i.log" 2>&1 &
    pids="$pids $!"
    servers="$servers        server $HOST:$p;
"
    i=$((i + 1))
done

cat >"$DIR/nginx.conf" <<EOF
# Written by scripts/cluster.sh: round-robin over the nodes, WebSocket upgrades passed through.
worker_processes 1;
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $DIR/nginx-tmp/body;
    proxy_temp_path $DIR/nginx-tmp/proxy;
    fastcgi_temp_path $DIR/nginx-tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx-tmp/uwsgi;
    scgi_temp_path $DIR/nginx-tmp/scgi;
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      close;
    }
    # Two pools of the same nodes: WebSocket upgrades take turns among themselves, so a client
    # that mints (HTTP) and then connects does not land on the same node every time.
    upstream switchboard {
$servers    }
    upstream switchboard_ws {
$servers    }
    server {
        listen $HOST:$PORT;
        client_max_body_size 11m;
        location / {
            proxy_pass http://switchboard;
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
        location /ws {
            proxy_pass http://switchboard_ws;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_buffering off;
            proxy_read_timeout 7500s;
            proxy_send_timeout 7500s;
        }
    }
}
EOF
"$NGINX" -e "$DIR/nginx-error.log" -p "$DIR" -c "$DIR/nginx.conf" &
pids="$pids $!"

# Ready when every node answers /readyz 200 on its own port, and nginx answers it too.
python3 - "$HOST" "$PORT" "$NODE_PORT" "$NODES" <<'PY'
import sys, time, urllib.request
host, port, first, nodes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def ready(p):
    try:
        with urllib.request.urlopen("http://%s:%d/readyz" % (host, p), timeout=1) as r:
            return r.status == 200
    except Exception:
        return False
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    down = [first + i for i in range(nodes) if not ready(first + i)]
    if not down and ready(port):
        sys.exit(0)
    time.sleep(0.1)
print("cluster: not ready yet: nodes on ports %s (see the logs)" % down, file=sys.stderr)
PY
echo
if [ "$USE_PG" = 1 ]; then
    echo "switchboard cluster: $NODES nodes behind nginx, Redis on port $REDIS_PORT, PostgreSQL on port $PG_PORT, logs in $DIR"
else
    echo "switchboard cluster: $NODES nodes behind nginx, Redis on port $REDIS_PORT, logs in $DIR"
fi
echo "open http://$HOST:$PORT/   (Ctrl-C to stop)"
echo
wait
