#!/bin/sh
# Three Liaison nodes side by side on this machine: Canada (CAN), the United States (USA) and
# France (FRA), each the demo node of its country with its own home, store and key
# (`liaison demo --country`). Each pins the others' public keys; Canada and France issue
# credentials to the USA, whose node adds them as peers; Canada and France serve TAXII in the
# background. The README's "Three nodes" section goes on from here.
#
#   examples/three-nodes.sh [DIR]        set up in DIR (default ./three-nodes), start the servers
#   examples/three-nodes.sh stop [DIR]   stop the servers
#
# Ports: CAN_PORT (default 6001) and FRA_PORT (default 6003). Needs `liaison` and `curl`.
set -eu

if [ "${1:-}" = stop ]; then
    dir=${2:-three-nodes}
    for country in can fra; do
        if [ -f "$dir/$country/serve.pid" ]; then
            kill "$(cat "$dir/$country/serve.pid")" 2>/dev/null || true
            rm -f "$dir/$country/serve.pid"
        fi
    done
    exit 0
fi

dir=${1:-three-nodes}
can_port=${CAN_PORT:-6001}
fra_port=${FRA_PORT:-6003}
at() { home=$1; shift; LIAISON_HOME="$dir/$home" liaison "$@"; }

for country in CAN USA FRA; do
    at "$(echo $country | tr A-Z a-z)" demo --country "$country" --json > /dev/null
    echo "$country: node ready in $dir/$(echo $country | tr A-Z a-z)"
done

# Each node pins the others' keys: what verifies their signatures, checkpoints and notices.
for a in can usa fra; do
    for b in can usa fra; do
        if [ "$a" != "$b" ]; then
            at "$a" partner set "$(echo $b | tr a-z A-Z)" --public-key "$(at "$b" node --public-key)" \
                --json > /dev/null
        fi
    done
done

# Canada and France issue TAXII credentials to the USA; its node adds them as peers.
at can partner credentials USA --json > "$dir/usa/from-can.json"
at fra partner credentials USA --json > "$dir/usa/from-fra.json"
at usa peer add can --url "http://127.0.0.1:$can_port" --partner CAN \
    --credentials "$dir/usa/from-can.json" --json > /dev/null
at usa peer add fra --url "http://127.0.0.1:$fra_port" --partner FRA \
    --credentials "$dir/usa/from-fra.json" --json > /dev/null

start() {
    country=$1 port=$2
    LIAISON_HOME="$dir/$country" nohup liaison serve --port "$port" \
        > "$dir/$country/serve.log" 2>&1 &
    echo $! > "$dir/$country/serve.pid"
    # Any answer will do (discovery asks for credentials): the server is up.
    curl -s -o /dev/null --retry 60 --retry-connrefused --retry-delay 1 \
        "http://127.0.0.1:$port/taxii2/"
    echo "$(echo "$country" | tr a-z A-Z): TAXII on http://127.0.0.1:$port (log: $dir/$country/serve.log)"
}
start can "$can_port"
start fra "$fra_port"
