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
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
from_env_file() {  # from_env_file KEY: KEY's value in .env (read, never executed)
    if [ -f .env ]; then sed -n "s/^$1=//p" .env | tail -n 1; fi
}
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
