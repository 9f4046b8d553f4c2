#!/bin/sh
# test_symbols - the shared library exports the public API and nothing
# else: every defined dynamic symbol is shmk_<letter>..., and it has a
# SONAME.
set -eu
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' |
	grep -v '^SHMK_0$' | sort -u)
[ -n "$syms" ] || { echo "no symbols exported by $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^shmk_[a-z]' || true)
if [ -n "$bad" ]; then
	echo "exported but not public API:"; printf '%s\n' "$bad"; exit 1
fi
for s in shmk_buffer_create shmk_buffer_open shmk_strerror shmk_unlink \
	shmk_stat; do
	printf '%s\n' "$syms" | grep -qx "$s" || { echo "missing $s"; exit 1; }
done
if printf '%s\n' "$syms" | grep -q '^shmk__'; then
	echo "internal symbols leak"; exit 1
fi
# The test hooks (src/rpc/testhooks.c) are not even hidden in it.
hooks=$(nm "$lib" 2>/dev/null | awk '{print $NF}' |
	grep -x 'shmk__rpc_lab\|shmk__rpc_poll\|shmk__rpc_out_ring' || true)
if [ -n "$hooks" ]; then
	echo "test hooks in the library:"; printf '%s\n' "$hooks"; exit 1
fi
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = "libshmk.so.0" ] || { echo "SONAME is '$soname'"; exit 1; }
echo "test_symbols: $(printf '%s\n' "$syms" | wc -l) symbols, all public"
