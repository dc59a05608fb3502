#!/usr/bin/env bash
# Restore what scripts/backup.sh wrote for DATE (YYYYmmdd), replacing the current data:
#   backups/neo4j-<DATE>.dump             -> neo4j-admin database load (overwrite)
#   backups/qdrant-<DATE>/*.snapshot      -> each collection recovered from its snapshot
#
#   scripts/restore.sh 20260101
#   COMPOSE_FILE=docker-compose.full.yml scripts/restore.sh 20260101
#
# The API (if this stack runs it) and Neo4j are stopped during the load and started again
# afterwards. Qdrant must be running: snapshots are uploaded through its HTTP API.
#
#   scripts/restore.sh --api DATE          # backups/ww-<DATE>.jsonl -> the running server
#   scripts/restore.sh --api --wipe DATE   # delete every session first, then load
#
# --api loads what scripts/backup.sh --api wrote through the server (POST
# /api/v1/admin/import via `ww import`), on either tier, with the service running. The
# import is an upsert: ids, contents, vectors and relations come back as they were, and
# loading the same backup twice leaves the same state. --wipe first deletes every session
# the server holds, so what was stored after the backup goes too. Needs WW_API_URL,
# WW_ADMIN_KEY and $PYTHON as backup.sh --api does.
#
#   scripts/restore.sh --data-dir DATE          # backups/data-<DATE>.tar.gz -> WW_DATA_DIR
#   scripts/restore.sh --data-dir --wipe DATE   # replace a data directory that is not empty
#
# --data-dir puts back what scripts/backup.sh --data-dir copied, with the service stopped:
# into an empty or missing data directory, or, with --wipe, in place of the current one
# (refused while a running server holds it). The directory is unpacked beside it first,
# so a failed restore leaves the current one as it was.
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

api=false
offline=false
wipe=false
while [ "$#" -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --api) api=true ;;
        --data-dir) offline=true ;;
        --wipe) wipe=true ;;
        -*) usage >&2; exit 2 ;;
        *) break ;;
    esac
    shift
done
if [ "$#" -ne 1 ] || { [ "$api" = true ] && [ "$offline" = true ]; } \
    || { [ "$wipe" = true ] && [ "$api" = false ] && [ "$offline" = false ]; }; then
    usage >&2
    exit 2
fi
DATE="$1"

if [ "$offline" = true ]; then
    dir="$(data_dir)"
    file="${BACKUP_DIR:-$root/backups}/data-$DATE.tar.gz"
    [ -f "$file" ] || { echo "restore: $file not found" >&2; exit 1; }
    if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && [ "$wipe" = false ]; then
        echo "restore: $dir is not empty; --wipe replaces it" >&2
        exit 1
    fi
    staging="$dir.restoring"
    trap 'rm -rf "$staging"' EXIT
    rm -rf "$staging"
    mkdir -p "$staging"
    tar -C "$staging" -xzf "$file"
    # One locked section: the current directory aside, the unpacked one in its place, then
    # the old one removed, so no server can open the data between the two. mv -T never
    # moves into a directory: if one appeared at $dir meanwhile, the restore fails instead.
    old="$dir.replaced"
    rm -rf "$old"
    # shellcheck disable=SC2016  # the script's $1..$3 are expanded by that shell
    swap='if [ -e "$2" ]; then mv -T "$2" "$3"; fi
if ! mv -T "$1" "$2"; then
    echo "restore: $2 was created during the restore (a server started?);" \
        "the data it replaced, if any, is in $3" >&2
    exit 1
fi
rm -rf "$3"'
    if [ -d "$dir" ]; then
        while_unused "$dir" bash -c "$swap" swap "$staging" "$dir" "$old"
    else
        bash -c "$swap" swap "$staging" "$dir" "$old"
    fi
    trap - EXIT
    echo "restore: data dir $dir <- $file"
    exit 0
fi

if [ "$api" = true ]; then
    WW_ADMIN_KEY="${WW_ADMIN_KEY:-$(from_env_file WW_ADMIN_KEY)}"
    export WW_ADMIN_KEY
    py="${PYTHON:-python3}"
    file="${BACKUP_DIR:-$root/backups}/ww-$DATE.jsonl"
    [ -f "$file" ] || { echo "restore: $file not found" >&2; exit 1; }
    if [ "$wipe" = true ]; then
        sessions="$("$py" -m ww.cli sessions list --all --json)"
        for session in $("$py" -c '
import json, sys
print("\n".join(s["session_id"] for s in json.loads(sys.argv[1])))' "$sessions"); do
            "$py" -m ww.cli sessions delete "$session" --json >/dev/null
            echo "restore: wiped session $session"
        done
    fi
    report="$("$py" -m ww.cli import "$file" --json)"
    "$py" -c '
import json, sys
r = json.loads(sys.argv[1])
counts = " ".join(f"{k}={v}" for k, v in sorted(r.get("counts", {}).items()))
print(f"restore: import <- {sys.argv[2]} ({counts})")' "$report" "$file"
    exit 0
fi
WW_QDRANT_API_KEY="${WW_QDRANT_API_KEY:-$(from_env_file WW_QDRANT_API_KEY)}"
WW_NEO4J_DATABASE="${WW_NEO4J_DATABASE:-$(from_env_file WW_NEO4J_DATABASE)}"

BACKUP_DIR="${BACKUP_DIR:-$root/backups}"
QDRANT_URL="${QDRANT_URL:-http://127.0.0.1:6333}"
NEO4J_CONTAINER="${NEO4J_CONTAINER:-ww-neo4j}"
NEO4J_DATABASE="${WW_NEO4J_DATABASE:-neo4j}"
dump="$BACKUP_DIR/neo4j-$DATE.dump"
snapshots="$BACKUP_DIR/qdrant-$DATE"

[ -f "$dump" ] || { echo "restore: $dump not found" >&2; exit 1; }
[ -d "$snapshots" ] || { echo "restore: $snapshots not found" >&2; exit 1; }

if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    compose=(docker-compose)
fi

has_service() {
    "${compose[@]}" config --services | grep -qx "$1"
}

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

# --- Qdrant: upload each snapshot; priority=snapshot makes it replace the collection ---
for file in "$snapshots"/*.snapshot; do
    [ -e "$file" ] || continue
    collection="$(basename "$file" .snapshot)"
    curl -fsS -X POST -H "api-key: ${WW_QDRANT_API_KEY:-}" \
        -F "snapshot=@$file" \
        "$QDRANT_URL/collections/$collection/snapshots/upload?priority=snapshot&wait=true" >/dev/null
    echo "restore: qdrant $collection <- $file"
done

# --- Neo4j: offline load over the current database ---
"${compose[@]}" stop neo4j
stopped=(neo4j "${stopped[@]}")
# docker cp writes into a stopped container too; the dump must be named <database>.dump.
docker cp "$dump" "$NEO4J_CONTAINER:/backups/$NEO4J_DATABASE.dump"
"${compose[@]}" run --rm --no-deps -T neo4j \
    neo4j-admin database load "$NEO4J_DATABASE" --from-path=/backups --overwrite-destination=true
echo "restore: neo4j $NEO4J_DATABASE <- $dump"
