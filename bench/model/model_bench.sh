#!/usr/bin/env bash
# bench-model: decrypting the same 1 GiB model, on one core (taskset -c 0), in one run:
#   - ours: peerpods-model decrypt into a tmpfs file (what the in-VM loader does: authenticate
#     every chunk, release by rename) and to /dev/null (the cipher and the reads alone);
#   - OpenSSL: `openssl speed -evp aes-256-gcm -bytes <chunk size>`, AES-256-GCM on one core in
#     memory, no I/O: the ceiling (`openssl enc` cannot serve as the baseline: it refuses AEAD
#     ciphers, "AEAD ciphers not supported", see apps/enc.c in OpenSSL 3);
#   - gpg: `gpg -d` of the same plaintext encrypted with `gpg --symmetric --cipher-algo AES256`
#     (default options otherwise), the common practice today.
# Each is run three times and the best kept. Files live in /dev/shm (tmpfs) so the disk does not
# count. Report (Markdown) to stdout and to the file given.
#
#   model_bench.sh <peerpods-model> <report.md> [size in MiB, default 1024]
set -euo pipefail
tool=$1
report=$2
mib=${3:-1024}
for cmd in openssl gpg taskset; do
  command -v $cmd >/dev/null || { echo "model_bench: $cmd not found (setup.sh installs it)" >&2; exit 1; }
done
base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/pp-model-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
export GNUPGHOME=$dir/gnupg
mkdir -m 700 "$GNUPGHOME"
one=(taskset -c 0)
runs=3

# measure <name> <command...>: runs the command $runs times (after $prep, untimed, if set) and
# keeps the fastest run's wall-clock and CPU (user + sys) seconds in wall[name] and cpu[name]. The
# CPU figure is what a loaded machine (this one is shared) disturbs least.
declare -A wall cpu
prep=
measure() {
  local name=$1; shift
  local TIMEFORMAT='%R %U %S' r u s
  for _ in $(seq 1 $runs); do
    [ -z "$prep" ] || eval "$prep"
    { time "$@" >/dev/null 2>&1; } 2>"$dir/time"
    read -r r u s <"$dir/time"
    if [ -z "${wall[$name]:-}" ] || awk -v t="$r" -v b="${wall[$name]}" 'BEGIN {exit !(t < b)}'; then
      wall[$name]=$r
      cpu[$name]=$(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}')
    fi
  done
}
calc() { awk "BEGIN {printf \"%.${2:-1}f\", $1}"; }
rate() { calc "$mib / $1"; }

echo "model_bench: $mib MiB plaintext in $dir" >&2
# Incompressible plaintext, fast: AES-CTR keystream.
{ openssl enc -aes-256-ctr -nosalt -pass pass:bench -in /dev/zero 2>/dev/null || true; } | head -c $((mib << 20)) >"$dir/model"
[ "$(stat -c %s "$dir/model")" = $((mib << 20)) ] || { echo "model_bench: could not make the plaintext" >&2; exit 1; }
"$tool" keygen "$dir/key"
"$tool" encrypt --key-file "$dir/key" --key-id kbs:///default/model-key/bench "$dir/model" "$dir/model.ppm"
chunk=$("$tool" inspect --json "$dir/model.ppm" | sed -n 's/.*"chunk_size": \([0-9]*\).*/\1/p')

prep="rm -f '$dir/out'"
measure ours_file "${one[@]}" "$tool" decrypt --key-file "$dir/key" "$dir/model.ppm" "$dir/out"
cmp -s "$dir/model" "$dir/out" || { echo "model_bench: our decrypt differs" >&2; exit 1; }
prep=
measure ours_null "${one[@]}" "$tool" decrypt --key-file "$dir/key" "$dir/model.ppm" -

# OpenSSL's own figure is in 1000s of bytes per second for the block size given: by default per
# CPU (user) second, with -elapsed per wall-clock second.
openssl_rate() {
  local k
  k=$("${one[@]}" openssl speed "$@" -evp aes-256-gcm -bytes "$chunk" -seconds 3 2>/dev/null |
      awk 'tolower($1) == "aes-256-gcm" {print $2}')
  calc "${k%k} * 1000 / 1048576"
}
openssl_cpu=$(openssl_rate)
openssl_wall=$(openssl_rate -elapsed)
enc_refusal=$(openssl enc -aes-256-gcm -pass pass:x -in /dev/null 2>&1 | head -n 1 || true)

gpg_opts=(--batch --yes --quiet --pinentry-mode loopback --passphrase bench-passphrase)
gpg "${gpg_opts[@]}" --symmetric --cipher-algo AES256 -o "$dir/model.gpg" "$dir/model"
prep="rm -f '$dir/out.gpg'"
measure gpg_file "${one[@]}" gpg "${gpg_opts[@]}" -d -o "$dir/out.gpg" "$dir/model.gpg"
cmp -s "$dir/model" "$dir/out.gpg" || { echo "model_bench: gpg decrypt differs" >&2; exit 1; }
prep=

pct() { calc "100 * $1 / $2" 0; }
times() { calc "$1 / $2"; }
row() {  # row <label> <wall MiB/s> <cpu MiB/s>
  echo "| $1 | $2 | $3 | $(pct "$2" "$openssl_wall")% / $(pct "$3" "$openssl_cpu")% | $(times "$2" "$(rate "${wall[gpg_file]}")")x / $(times "$3" "$(rate "${cpu[gpg_file]}")")x |"
}
{
  echo "## Model decryption, $mib MiB, one core ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
  echo
  echo "| decrypt | MiB/s (wall) | MiB per CPU-second | vs OpenSSL AES-256-GCM (wall / CPU) | vs gpg (wall / CPU) |"
  echo "|---|---:|---:|---:|---:|"
  row "peerpods-model decrypt to a tmpfs file (${chunk}-byte chunks)" "$(rate "${wall[ours_file]}")" "$(rate "${cpu[ours_file]}")"
  row "peerpods-model decrypt to /dev/null" "$(rate "${wall[ours_null]}")" "$(rate "${cpu[ours_null]}")"
  row "openssl speed -evp aes-256-gcm -bytes $chunk (in memory, no I/O)" "$openssl_wall" "$openssl_cpu"
  row "gpg -d to a tmpfs file (--symmetric --cipher-algo AES256)" "$(rate "${wall[gpg_file]}")" "$(rate "${cpu[gpg_file]}")"
  echo
  echo "Best of $runs runs each (CPU = user + sys of the fastest run), files on tmpfs, pinned with"
  echo "taskset -c 0; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). OpenSSL's figure is"
  echo "openssl speed (CPU: its default user-time divisor; wall: -elapsed), since \`openssl enc -aes-256-gcm\`"
  echo "refuses AEAD ciphers (\"$enc_refusal\"). Goal: >= 80% of OpenSSL, >= 10x gpg."
} | tee "$report"
