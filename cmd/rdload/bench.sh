#!/usr/bin/env bash
# bench.sh — the HTTP measurements of the README's Performance section, end to end, on one backend:
# build recoverydesk and rdload into a temporary directory, create a fresh database, seed the demo
# desk (its supervisor signs in to the console), add an API key, start the fake Bot API and the
# server (bot in webhook mode), run rdload's verify mode and then its mix mode, stop everything,
# and print the result lines. Nothing outside the temporary directory is kept; a PostgreSQL
# database rdload_<random> is created for the run and dropped after it.
#
# Usage: cmd/rdload/bench.sh BACKEND [options]
#   BACKEND   sqlite, postgres (the server of $RECOVERYDESK_TEST_POSTGRES), or a postgres:// DSN
#             whose server gets the fresh database (the DSN's own database is only connected to)
# Options (defaults are the acceptance settings):
#   --clients N          rdload clients (32)
#   --accounts N         verify mode accounts (30000; setup takes minutes on SQLite)
#   --duration D         verify mode duration (10s)
#   --rounds N           verify and healthz rounds, the result is the median round (5; each round
#                        after the first waits up to a minute for fresh codes)
#   --mix-accounts N     mix mode accounts (0: rdload's default for the mix)
#   --mix-duration D     mix mode duration (60s)
#   --mix-weights W      rdload --mix-weights (rdload's default)
#   --port P             server port (18090; P+1 is the fake Bot API's)
#   --short              smoke settings: 2000 accounts, 5s, mix 2000 accounts and 5s (numbers not
#                        for the README)
#   --skip-verify | --skip-mix
# Exit status: 0 when every run had 0 errors, 1 otherwise.
set -euo pipefail

usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; }

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
[[ $1 == -h || $1 == --help ]] && { usage; exit 0; }
backend=$1
shift
clients=32 accounts=30000 duration=10s rounds=5 mix_accounts=0 mix_duration=60s mix_weights="" port=18090
short=0 do_verify=1 do_mix=1
while [[ $# -gt 0 ]]; do
	case $1 in
	--clients) clients=$2; shift 2 ;;
	--accounts) accounts=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--mix-accounts) mix_accounts=$2; shift 2 ;;
	--mix-duration) mix_duration=$2; shift 2 ;;
	--mix-weights) mix_weights=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--short) short=1; accounts=2000; duration=5s; rounds=1; mix_accounts=2000; mix_duration=5s; shift ;;
	--skip-verify) do_verify=0; shift ;;
	--skip-mix) do_mix=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/rdload-bench.XXXXXX")
server_pid="" fake_pid="" pg_admin="" pg_db=""

cleanup() {
	local rc=$?
	[[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
	[[ -n $fake_pid ]] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null || true
	if [[ -n $pg_db ]]; then
		psql "$pg_admin" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null ||
			echo "bench.sh: could not drop database $pg_db" >&2
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

random() { head -c "$1" /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

# waitfor FILE REGEX PID: wait up to 60 s until FILE has a line matching REGEX, while PID lives.
waitfor() {
	for _ in $(seq 600); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || { echo "bench.sh: process ended before '$2' appeared:" >&2; tail -n 20 "$1" >&2; return 1; }
		sleep 0.1
	done
	echo "bench.sh: '$2' did not appear within 60 s" >&2
	return 1
}

case $backend in
sqlite) ;;
postgres) pg_admin=${RECOVERYDESK_TEST_POSTGRES:-} ;;
postgres://* | postgresql://*) pg_admin=$backend ;;
*) echo "bench.sh: BACKEND must be sqlite, postgres or a postgres:// DSN" >&2; exit 2 ;;
esac

echo "== building into $work"
(cd "$repo" && go build -o "$work/recoverydesk" ./cmd/recoverydesk && go build -o "$work/rdload" ./cmd/rdload)

# A clean environment for the server: only what this script sets.
while IFS= read -r name; do unset "$name"; done < <(env | sed -n 's/^\(RECOVERYDESK_[A-Z_]*\)=.*/\1/p')
export RECOVERYDESK_ADDR=127.0.0.1:$port RECOVERYDESK_BASE_URL=http://127.0.0.1:$port
if [[ $backend == sqlite ]]; then
	export RECOVERYDESK_DB=$work/rd.db
	label="SQLite (synchronous=FULL)"
fi
if [[ $backend != sqlite ]]; then
	command -v psql >/dev/null || { echo "bench.sh: psql is needed for PostgreSQL" >&2; exit 2; }
	[[ -n $pg_admin ]] || { echo "bench.sh: set RECOVERYDESK_TEST_POSTGRES (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)" >&2; exit 2; }
	pg_db=rdload_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
	psql "$pg_admin" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $pg_db" >/dev/null
	# The same server and options, another database: replace the DSN's path.
	base=${pg_admin%%\?*} query=""
	[[ $pg_admin == *\?* ]] && query="?${pg_admin#*\?}"
	export RECOVERYDESK_DB="${base%/*}/$pg_db$query"
	export RECOVERYDESK_KEYS="k1:$(head -c 32 /dev/urandom | base64)" RECOVERYDESK_AUDIT_KEY="$(head -c 32 /dev/urandom | base64)"
	label="PostgreSQL ($(psql "$pg_admin" -qAtX -c 'SHOW server_version'), database $pg_db)"
fi
cd "$work"

echo "== $label: demo desk, API key"
"$work/recoverydesk" demo >"$work/demo.txt" 2>"$work/demo.log"
read -r agent_email agent_password agent_secret < <(awk '$1 == "supervisor" { print $2, $3, $4; exit }' "$work/demo.txt") || true
[[ -n ${agent_secret:-} ]] || { echo "bench.sh: no supervisor in the demo output" >&2; exit 1; }
api_key=$("$work/recoverydesk" apikey add --name load 2>"$work/apikey.log" | grep '^rdk_') ||
	{ echo "bench.sh: apikey add failed:" >&2; tail -n 5 "$work/apikey.log" >&2; exit 1; }

echo "== fake Bot API and server"
tg_secret=$(random 32)
"$work/rdload" fake-botapi --listen "127.0.0.1:$((port + 1))" >"$work/fake.out" 2>&1 &
fake_pid=$!
waitfor "$work/fake.out" '^fake-botapi listening' "$fake_pid"
RECOVERYDESK_TELEGRAM_TOKEN=100000:rdload-fake RECOVERYDESK_TELEGRAM_API="http://127.0.0.1:$((port + 1))/bot%s/%s" \
	RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET=$tg_secret "$work/recoverydesk" serve >"$work/serve.out" 2>"$work/serve.log" &
server_pid=$!
waitfor "$work/serve.out" 'RecoveryDesk listening on' "$server_pid"

export RDLOAD_API_KEY=$api_key RDLOAD_AGENT_PASSWORD=$agent_password RDLOAD_AGENT_TOTP_SECRET=$agent_secret RDLOAD_TELEGRAM_SECRET=$tg_secret
short_flag=()
[[ $short == 1 ]] && short_flag=(--allow-short)
status=0
verify_line="(not run)" mix_line="(not run)"
if [[ $do_verify == 1 ]]; then
	echo "== rdload verify: $clients clients, $duration, $accounts accounts, $rounds rounds"
	"$work/rdload" --url "$RECOVERYDESK_BASE_URL" --clients "$clients" --duration "$duration" --accounts "$accounts" --rounds "$rounds" \
		--setup-timeout 30m --pid "$server_pid" "${short_flag[@]}" | tee "$work/verify.out" || status=1
	verify_line=$(tail -n 1 "$work/verify.out")
fi
if [[ $do_mix == 1 ]]; then
	echo "== rdload mix: $clients clients, $mix_duration"
	mix_args=(--mix --agent-email "$agent_email" --url "$RECOVERYDESK_BASE_URL" --clients "$clients"
		--duration "$mix_duration" --accounts "$mix_accounts" --setup-timeout 30m --pid "$server_pid" "${short_flag[@]}")
	[[ -n $mix_weights ]] && mix_args+=(--mix-weights "$mix_weights")
	"$work/rdload" "${mix_args[@]}" | tee "$work/mix.out" || status=1
	mix_line=$(tail -n 1 "$work/mix.out")
fi

kill "$server_pid"
wait "$server_pid" || { echo "bench.sh: the server did not exit cleanly" >&2; status=1; }
server_pid=""
server_errors=$(grep -c '"level":"ERROR"' "$work/serve.log" || true)
kill "$fake_pid"
wait "$fake_pid" || true
fake_pid=""

echo
echo "== results: $label$([[ $short == 1 ]] && echo ', SHORT settings: not acceptance figures')"
echo "verify: $verify_line"
echo "mix:    $mix_line"
echo "fake Bot API: $(tail -n 1 "$work/fake.out")"
echo "server log: $server_errors ERROR lines"
[[ $server_errors == 0 ]] || { grep '"level":"ERROR"' "$work/serve.log" | head -n 5 >&2; status=1; }
exit "$status"
