#!/usr/bin/env bash
# Write strong random secrets into .env (Neo4j password, Qdrant API key).
#
#   scripts/setup-env.sh [--force] [--output FILE]
#
# Without .env, it is created from .env.example. An .env whose secrets are still empty (a
# fresh copy of .env.example) is filled in place. An .env that already holds secrets is left
# alone unless you consent: --force, or "y" at the prompt on a terminal; the old file is
# kept as .env.bak. Secrets are 48 hex characters (192 bits) from /dev/urandom.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
example="$root/.env.example"
output="$root/.env"
force=0

while [ "$#" -gt 0 ]; do
    case "$1" in
        --force) force=1 ;;
        --output) output="${2:?--output needs a file}"; shift ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "setup-env: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

# The variables this script owns; NEO4J_PASSWORD and WW_NEO4J_PASSWORD must be equal.
secret_keys=(NEO4J_PASSWORD WW_NEO4J_PASSWORD WW_QDRANT_API_KEY)

secret() {
    # od reads exactly 24 bytes, so no pipe is cut short under pipefail.
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n'
}

value_of() {  # value_of KEY FILE: the value on the last KEY= line, empty if none
    sed -n "s/^$1=//p" "$2" | tail -n 1
}

if [ ! -f "$example" ]; then
    echo "setup-env: $example not found" >&2
    exit 1
fi

if [ -f "$output" ]; then
    has_secrets=0
    for key in "${secret_keys[@]}"; do
        [ -n "$(value_of "$key" "$output")" ] && has_secrets=1
    done
    if [ "$has_secrets" -eq 1 ] && [ "$force" -eq 0 ]; then
        answer=n
        if [ -t 0 ]; then
            read -r -p "$output already holds secrets; replace them? [y/N] " answer || true
        fi
        case "$answer" in
            y | Y | yes | YES) ;;
            *)
                echo "setup-env: $output already holds secrets; left unchanged (--force replaces them)" >&2
                exit 1
                ;;
        esac
    fi
    [ "$has_secrets" -eq 1 ] && cp -p "$output" "$output.bak"
    source_file="$output"
else
    mkdir -p "$(dirname "$output")"
    source_file="$example"
fi

neo4j_password="$(secret)"
qdrant_api_key="$(secret)"

umask 077
tmp="$(mktemp "$output.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
awk -v neo="$neo4j_password" -v qd="$qdrant_api_key" '
    BEGIN { seen["NEO4J_PASSWORD"] = 0; seen["WW_NEO4J_PASSWORD"] = 0; seen["WW_QDRANT_API_KEY"] = 0 }
    /^NEO4J_PASSWORD=/    { print "NEO4J_PASSWORD=" neo;    seen["NEO4J_PASSWORD"] = 1; next }
    /^WW_NEO4J_PASSWORD=/ { print "WW_NEO4J_PASSWORD=" neo; seen["WW_NEO4J_PASSWORD"] = 1; next }
    /^WW_QDRANT_API_KEY=/ { print "WW_QDRANT_API_KEY=" qd;  seen["WW_QDRANT_API_KEY"] = 1; next }
    { print }
    END {
        if (!seen["NEO4J_PASSWORD"])    print "NEO4J_PASSWORD=" neo
        if (!seen["WW_NEO4J_PASSWORD"]) print "WW_NEO4J_PASSWORD=" neo
        if (!seen["WW_QDRANT_API_KEY"]) print "WW_QDRANT_API_KEY=" qd
    }
' "$source_file" >"$tmp"
chmod 600 "$tmp"
mv "$tmp" "$output"
trap - EXIT

echo "setup-env: wrote new secrets for ${secret_keys[*]} to $output (mode 600)"
