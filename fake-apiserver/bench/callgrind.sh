#!/bin/sh
# Server-side instructions per request, this fake beside its peer, measured the same way:
# callgrind collects only inside each side's request handler (ours: the control layer's
# service call, which holds the request log, the faults and the API server; the peer's:
# `MockService::handle_request`), over PROFILE_N requests of one part of the apiserver bench.
#
#   fake-apiserver/bench/callgrind.sh [N]      (default 2000; needs valgrind)
#
# Prints, for GET, CREATE and UPDATE: instructions per request, ours and the peer's.
set -eu
N="${1:-2000}"
cd "$(dirname "$0")/../.."
cargo bench -p fake-apiserver-bench --bench apiserver --no-run >/dev/null 2>&1
BIN=$(ls -t target/release/deps/apiserver-* | grep -v '\.d$' | head -1)
OUT=$(mktemp -d)
count() { # part toggle requests
    PROFILE_N="$N" valgrind --tool=callgrind --callgrind-out-file="$OUT/$1.out" \
        --toggle-collect="$2" "$BIN" --only "$1" >/dev/null 2>&1
    total=$(grep '^summary:' "$OUT/$1.out" | awk '{print $2}')
    echo $((total / $3))
}
OURS='*ControlService*as*tower_service::Service*call*'
PEER='*MockService::handle_request*'
for phase in get create update; do
    requests=$N
    [ "$phase" = update ] && requests=$((N / 5))
    ours=$(count "$phase" "$OURS" "$requests")
    peer=$(count "peer-$phase" "$PEER" "$requests")
    echo "$phase: fake-apiserver $ours instructions per request, kube-fake-client $peer"
done
rm -rf "$OUT"
