# Shell functions shared by the scripts that assemble a root filesystem from this host's files
# (podvm-image/build-test-image.sh, deploy/image/build-image.sh). Source it from bash.

# pp_install_with_libs ROOT SRC DEST: copies the executable SRC to ROOT/DEST and every shared
# library and the dynamic loader `ldd SRC` lists, each at the path ldd names (the loader searches
# the same paths inside the root as on this host). A library already in ROOT is kept. Fails, naming
# them, when ldd reports libraries this host lacks.
pp_install_with_libs() {
  local root=$1 src=$2 dest=$3 libs lib
  # Every step checks its own status: callers write `pp_install_with_libs ... || die`, and errexit
  # does not apply inside a function called that way.
  mkdir -p "$(dirname "$root$dest")" && cp "$src" "$root$dest" || return 1
  libs=$(ldd "$src") || {
    echo "ldd $src failed" >&2
    return 1
  }
  if grep -q 'not found' <<<"$libs"; then
    echo "$src needs libraries this host lacks: $(grep 'not found' <<<"$libs" | tr -s ' \t' ' ')" >&2
    return 1
  fi
  while read -r lib; do
    [[ -e $root$lib ]] && continue
    mkdir -p "$(dirname "$root$lib")" && cp -L "$lib" "$root$lib" || return 1
  done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libs")
}
