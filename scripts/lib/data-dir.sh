# shellcheck shell=bash
# Sourced by backup.sh and restore.sh for --data-dir: the embedded tier's data directory
# (SQLite + Qdrant Edge), copied whole while no World Weaver has it open.

data_dir() {  # the data directory the server would use: WW_DATA_DIR, .env's, or the default
    local dir="${WW_DATA_DIR:-$(from_env_file WW_DATA_DIR)}"
    dir="${dir:-$HOME/.local/share/world-weaver}"
    printf '%s\n' "${dir/#\~/$HOME}"
}

# while_unused DIR CMD...: run CMD holding, exclusively, the locks a running server holds
# shared on DIR: the one beside its SQLite file (every process with the file open has it)
# and the one each Qdrant Edge collection takes on its wal directory, so no server has the
# data open and none starts meanwhile (it refuses to open what is locked).
# Exits 1 with one line if a running server holds one of them.
while_unused() {
    local dir="$1" wal rc=0
    shift
    local hold=()
    [ -f "$dir/ww.sqlite3.lock" ] && hold+=(flock -n -E 75 "$dir/ww.sqlite3.lock")
    for wal in "$dir"/vectors*/wal; do
        [ -d "$wal" ] && hold+=(flock -n -E 75 "$wal")
    done
    "${hold[@]}" "$@" || rc=$?
    if [ "$rc" -eq 75 ]; then
        echo "$(basename "$0" .sh): $dir is in use by a running World Weaver; stop it first" >&2
        exit 1
    fi
    return "$rc"
}
