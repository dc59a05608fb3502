#!/usr/bin/env bash
# Back up the server tier: a neo4j-admin dump of Neo4j and a snapshot of every Qdrant
# collection, into ./backups (or $BACKUP_DIR):
#   backups/neo4j-<DATE>.dump
#   backups/qdrant-<DATE>/<collection>.snapshot
#
#   scripts/backup.sh                    # DATE defaults to today, YYYYmmdd
#   COMPOSE_FILE=docker-compose.full.yml scripts/backup.sh
#
# Neo4j Community dumps only a stopped database, so Neo4j (and the API, if this stack runs
# it) is stopped for the dump and started again afterwards, also when the dump fails.
# Qdrant snapshots are taken online through its HTTP API (with WW_QDRANT_API_KEY).
#
#   scripts/backup.sh --api              # backups/ww-<DATE>.jsonl, from the running server
#
# --api backs up through the server itself (GET /api/v1/admin/export via `ww export`),
# on either tier (SQLite + Qdrant Edge, or Neo4j) and without stopping anything: every
# session's memories with their vectors, as JSON Lines. It needs the server's address
# (WW_API_URL, default http://127.0.0.1:8765), its WW_ADMIN_KEY, and a Python with World
# Weaver installed ($PYTHON, default python3). scripts/restore.sh --api DATE loads it back.
#
#   scripts/backup.sh --data-dir         # backups/data-<DATE>.tar.gz, the service stopped
#
# --data-dir copies the embedded tier's data directory (WW_DATA_DIR, as the server reads it:
# the environment, then .env, then ~/.local/share/world-weaver) whole: the SQLite database
# with its WAL and every Qdrant Edge collection. Stop the service first; a data directory a
# running server holds is refused, and none can start on it while the copy is made.
# scripts/restore.sh --data-dir DATE puts it back.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
from_env_file() {  # from_env_file KEY: KEY's value in .env (read, never executed)
    if [ -f .env ]; then sed -n "s/^$1=//p" .env | tail -n 1; fi
}
# shellcheck source=lib/data-dir.sh
. "$root/scripts/lib/data-dir.sh"

case "${1:-}" in
    "") ;;
    -h | --help) usage; exit 0 ;;
    --api)
        WW_ADMIN_KEY="${WW_ADMIN_KEY:-$(from_env_file WW_ADMIN_KEY)}"
        export WW_ADMIN_KEY
        DATE="${DATE:-$(date +%Y%m%d)}"
        BACKUP_DIR="${BACKUP_DIR:-$root/backups}"
        mkdir -p "$BACKUP_DIR"
        file="$BACKUP_DIR/ww-$DATE.jsonl"
        # `ww export` streams into FILE.partial and renames it once the trailer has come:
        # an interrupted backup never leaves a file restore.sh would take for whole.
        report="$("${PYTHON:-python3}" -m ww.cli export "$file" --json)"
        "${PYTHON:-python3}" -c '
import json, sys
r = json.loads(sys.argv[1])
counts = " ".join(f"{k}={v}" for k, v in sorted(r["counts"].items()))
print("backup: export -> %s (%d bytes; %s)" % (r["file"], r["bytes"], counts))' "$report"
        exit 0
        ;;
    --data-dir)
        dir="$(data_dir)"
        [ -f "$dir/ww.sqlite3" ] || [ -d "$dir/vectors" ] \
            || { echo "backup: $dir holds no World Weaver data" >&2; exit 1; }
        DATE="${DATE:-$(date +%Y%m%d)}"
        BACKUP_DIR="${BACKUP_DIR:-$root/backups}"
        mkdir -p "$BACKUP_DIR"
        file="$BACKUP_DIR/data-$DATE.tar.gz"
        # Written under another name and renamed when whole, as --api does.
        trap 'rm -f "$file.partial"' EXIT
        while_unused "$dir" tar -C "$dir" -czf "$file.partial" .
        mv "$file.partial" "$file"
        trap - EXIT
        echo "backup: data dir $dir -> $file ($(wc -c <"$file") bytes)"
        exit 0
        ;;
    *) usage >&2; exit 2 ;;
esac
WW_QDRANT_API_KEY="${WW_QDRANT_API_KEY:-$(from_env_file WW_QDRANT_API_KEY)}"
WW_NEO4J_DATABASE="${WW_NEO4J_DATABASE:-$(from_env_file WW_NEO4J_DATABASE)}"

DATE="${DATE:-$(date +%Y%m%d)}"
BACKUP_DIR="${BACKUP_DIR:-$root/backups}"
QDRANT_URL="${QDRANT_URL:-http://127.0.0.1:6333}"
NEO4J_CONTAINER="${NEO4J_CONTAINER:-ww-neo4j}"
NEO4J_DATABASE="${WW_NEO4J_DATABASE:-neo4j}"

if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    compose=(docker-compose)
fi

qdrant() {  # qdrant METHOD PATH [curl args...]: call Qdrant's HTTP API, failing on errors
    local method="$1" path="$2"
    shift 2
    curl -fsS -X "$method" -H "api-key: ${WW_QDRANT_API_KEY:-}" "$@" "$QDRANT_URL$path"
}

has_service() {
    "${compose[@]}" config --services | grep -qx "$1"
}

mkdir -p "$BACKUP_DIR/qdrant-$DATE"

# --- Qdrant: one snapshot per collection, downloaded and then removed from the server ---
collections="$(qdrant GET /collections | python3 -c \
    'import json, sys; print("\n".join(c["name"] for c in json.load(sys.stdin)["result"]["collections"]))')"
for collection in $collections; do
    name="$(qdrant POST "/collections/$collection/snapshots?wait=true" | python3 -c \
        'import json, sys; print(json.load(sys.stdin)["result"]["name"])')"
    qdrant GET "/collections/$collection/snapshots/$name" \
        -o "$BACKUP_DIR/qdrant-$DATE/$collection.snapshot"
    qdrant DELETE "/collections/$collection/snapshots/$name?wait=true" >/dev/null
    echo "backup: qdrant $collection -> $BACKUP_DIR/qdrant-$DATE/$collection.snapshot"
done

# --- Neo4j: offline dump, services restarted whatever happens ---
stopped=()
restart() {
    if [ "${#stopped[@]}" -gt 0 ]; then
        "${compose[@]}" start "${stopped[@]}"
    fi
}
trap restart EXIT
if has_service ww-api; then
    "${compose[@]}" stop ww-api
    stopped=(ww-api)
fi
"${compose[@]}" stop neo4j
stopped=(neo4j "${stopped[@]}")
"${compose[@]}" run --rm --no-deps -T neo4j \
    neo4j-admin database dump "$NEO4J_DATABASE" --to-path=/backups --overwrite-destination=true
# docker cp reads from a stopped container too.
docker cp "$NEO4J_CONTAINER:/backups/$NEO4J_DATABASE.dump" "$BACKUP_DIR/neo4j-$DATE.dump"
echo "backup: neo4j $NEO4J_DATABASE -> $BACKUP_DIR/neo4j-$DATE.dump"
