#!/usr/bin/env bash
# peerpods-model as a model owner meets it: keygen, encrypt, inspect, decrypt (to a file and to
# stdout), the refusals (an existing key, a wrong key, a damaged file, a bad key file) with exit
# code 1 or 2 and nothing released, and the format checked both ways against format_oracle.py, an
# independent implementation of model/FORMAT.md on python3-cryptography.
#
#   cli_test.sh <peerpods-model> <tests/model dir>
set -euo pipefail
tool=$1
oracle=$2/format_oracle.py
dir=$(mktemp -d /tmp/pp-model-cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL $*"; exit 1; }
passed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }

# expect <rc> <stderr pattern> <command...>
expect() {
  local want_rc=$1 pattern=$2; shift 2
  local rc=0
  "$@" >"$dir/out" 2>"$dir/err" </dev/null || rc=$?
  [ "$rc" -eq "$want_rc" ] || fail "$* exited $rc, want $want_rc: $(cat "$dir/err")"
  grep -qE -- "$pattern" "$dir/err" || fail "$*: stderr does not match '$pattern': $(cat "$dir/err")"
}

"$tool" keygen "$dir/key"
[ "$(stat -c %s "$dir/key")" = 32 ] || fail "key is not 32 bytes"
[ "$(stat -c %a "$dir/key")" = 600 ] || fail "key mode is $(stat -c %a "$dir/key")"
cp "$dir/key" "$dir/key.before"
expect 1 "never replaced" "$tool" keygen "$dir/key"
cmp -s "$dir/key" "$dir/key.before" || fail "keygen overwrote a key"
pass keygen_makes_a_private_key_and_never_overwrites_one

head -c 3000000 /dev/urandom >"$dir/model"
"$tool" encrypt --key-file "$dir/key" --key-id kbs:///default/model-key/test --chunk-size 65536 \
  "$dir/model" "$dir/model.enc"
"$tool" inspect "$dir/model.enc" >"$dir/inspect"
grep -q "key id: *kbs:///default/model-key/test" "$dir/inspect" || fail "inspect: $(cat "$dir/inspect")"
grep -q "plaintext size: 3000000 (46 chunks)" "$dir/inspect" || fail "inspect: $(cat "$dir/inspect")"
"$tool" inspect --json "$dir/model.enc" >"$dir/inspect.json"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["chunk_size"]==65536 and j["plaintext_size"]==3000000 and j["key_id"]=="kbs:///default/model-key/test", j' "$dir/inspect.json" \
  || fail "inspect --json: $(cat "$dir/inspect.json")"
"$tool" decrypt --key-file "$dir/key" "$dir/model.enc" "$dir/model.out"
cmp -s "$dir/model" "$dir/model.out" || fail "decrypted model differs"
[ "$(stat -c %a "$dir/model.out")" = 600 ] || fail "decrypted mode is $(stat -c %a "$dir/model.out")"
pass encrypt_inspect_decrypt_round_trip

# Pipes both ways, a hex key file, progress lines, stdout with its warning.
od -An -tx1 -v "$dir/key" | tr -d ' \n' >"$dir/key.hex"; echo >>"$dir/key.hex"
cat "$dir/model" | "$tool" encrypt --progress --key-file "$dir/key.hex" --key-id x - - 2>"$dir/enc.err" >"$dir/piped.enc"
grep -q "encrypt: .* MiB/s" "$dir/enc.err" || fail "no progress: $(cat "$dir/enc.err")"
"$tool" inspect "$dir/piped.enc" | grep -q "plaintext size: unknown" || fail "piped size not unknown"
"$tool" decrypt --key-file "$dir/key" - - <"$dir/piped.enc" 2>"$dir/dec.err" | cmp -s - "$dir/model" \
  || fail "stdout decrypt differs"
grep -q "unverified until peerpods-model exits with status 0" "$dir/dec.err" || fail "no stdout warning"
chmod 644 "$dir/key.hex"
expect 0 "warning: key file .* has mode 0644: others on this machine can read it" \
  "$tool" encrypt --key-file "$dir/key.hex" --key-id x "$dir/model" "$dir/warned.enc"
pass pipes_hex_keys_progress_and_a_readable_key_warned

# Refusals: nothing at OUT afterwards, exit 1, a reason.
"$tool" keygen "$dir/other-key"
expect 1 "wrong key or tampered header" "$tool" decrypt --key-file "$dir/other-key" "$dir/model.enc" "$dir/refused"
[ ! -e "$dir/refused" ] || fail "wrong key left a file"
cp "$dir/model.enc" "$dir/damaged.enc"
printf '\x55' | dd of="$dir/damaged.enc" bs=1 seek=2000000 conv=notrunc status=none
expect 1 "chunk 30 failed authentication" "$tool" decrypt --key-file "$dir/key" "$dir/damaged.enc" "$dir/refused"
head -c 1000000 "$dir/model.enc" >"$dir/short.enc"
expect 1 "truncated inside chunk 15" "$tool" decrypt --key-file "$dir/key" "$dir/short.enc" "$dir/refused"
expect 1 "output so far is NOT authentic" "$tool" decrypt --key-file "$dir/key" "$dir/short.enc" -
[ -z "$(ls "$dir" | grep -E 'refused|partial')" ] || fail "a refusal left files: $(ls "$dir")"
head -c 31 /dev/urandom >"$dir/bad-key"
expect 1 "must hold 32 raw bytes or 64 hex digits" "$tool" decrypt --key-file "$dir/bad-key" "$dir/model.enc" "$dir/refused"
expect 1 "not an encrypted model" "$tool" inspect "$dir/model"
expect 2 "key-id" "$tool" encrypt --key-file "$dir/key" "$dir/model" "$dir/x.enc"
expect 2 "chunk-size" "$tool" encrypt --key-file "$dir/key" --key-id x --chunk-size 100 "$dir/model" "$dir/x.enc"
[ ! -e "$dir/x.enc" ] || fail "a refused encrypt left a file"
pass refusals_release_nothing

# The format against an independent implementation, both ways, known and unknown sizes.
/usr/bin/python3 "$oracle" decrypt "$dir/key" "$dir/model.enc" "$dir/oracle.out" || fail "oracle rejects our file"
cmp -s "$dir/model" "$dir/oracle.out" || fail "oracle decrypted something else"
/usr/bin/python3 "$oracle" decrypt "$dir/key" "$dir/piped.enc" "$dir/oracle.out" || fail "oracle rejects our piped file"
cmp -s "$dir/model" "$dir/oracle.out" || fail "oracle decrypted something else (piped)"
/usr/bin/python3 "$oracle" decrypt "$dir/key" "$dir/damaged.enc" "$dir/oracle.bad" 2>/dev/null && fail "oracle accepts a damaged file"
for size in 0 1 4096 10000; do
  head -c $size "$dir/model" >"$dir/small"
  for mode in "" --unknown-size; do
    /usr/bin/python3 "$oracle" encrypt "$dir/key" kbs:///k 4096 "$dir/small" "$dir/small.enc" $mode
    "$tool" decrypt --key-file "$dir/key" "$dir/small.enc" "$dir/small.out" || fail "oracle's $size $mode rejected"
    cmp -s "$dir/small" "$dir/small.out" || fail "oracle's $size $mode decrypted wrong"
    rm -f "$dir/small.out"
  done
done
pass independent_implementation_agrees

echo "all $passed passed"
