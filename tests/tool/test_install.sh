#!/bin/sh
# test_install - installs the build into a scratch prefix and builds two
# outside programs against it, one with pkg-config and one with CMake's
# find_package(shmk), each linked shared and static; all four must run.
set -eu
build=$1
cc=$2
tmp=$(mktemp -d /tmp/shmk-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
for f in include/shmk.h bin/shmk; do
	[ -e "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
libdir=$(dirname "$(find "$prefix" -name libshmk.so.0 | head -n 1)")
# The installed tool runs as it is (it finds the library beside it).
"$prefix/bin/shmk" version | grep -q '^shmk [0-9]'
[ -f "$prefix/share/man/man1/shmk.1" ] || { echo "no man page"; exit 1; }
[ -f "$prefix/share/man/man3/shmk.3" ] || { echo "no shmk(3) man page"; exit 1; }
for f in libshmk.so libshmk.so.0 libshmk.a pkgconfig/shmk.pc \
	cmake/shmk/shmkConfig.cmake; do
	[ -e "$libdir/$f" ] || { echo "not installed: $libdir/$f"; exit 1; }
done

cat >"$tmp/hello.c" <<'C'
#include <shmk.h>
#include <stdio.h>

int main(void)
{
	struct shmk_buffer *b;
	int v = 42, w = 0;

	if (shmk_buffer_create(NULL, 64, NULL, &b) < 0)
		return 1;
	shmk_buffer_write(b, 8, &v, sizeof(v), -1);
	shmk_buffer_read(b, 8, &w, sizeof(w), -1);
	shmk_buffer_close(b);
	printf("hello from shmk %s: %d\n", SHMK_VERSION_STRING, w);
	return w == 42 ? 0 : 1;
}
C

# pkg-config, shared and static.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
"$cc" -o "$tmp/hello_pc" "$tmp/hello.c" $(pkg-config --cflags --libs shmk)
LD_LIBRARY_PATH="$libdir" "$tmp/hello_pc"
# shellcheck disable=SC2046
"$cc" -o "$tmp/hello_pc_static" "$tmp/hello.c" \
	$(pkg-config --cflags shmk) "$libdir/libshmk.a" \
	$(pkg-config --static --libs-only-other shmk)
"$tmp/hello_pc_static"

# CMake find_package, shared and static.
mkdir "$tmp/proj"
cp "$tmp/hello.c" "$tmp/proj/"
cat >"$tmp/proj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(hello C)
find_package(shmk 0.1 REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello shmk::shmk)
add_executable(hello_static hello.c)
target_link_libraries(hello_static shmk::shmk_static)
CM
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$cc" >"$tmp/cmake.log"
cmake --build "$tmp/proj/build" >>"$tmp/cmake.log"
"$tmp/proj/build/hello"
"$tmp/proj/build/hello_static"
# The shared one found the installed library through its RUNPATH.
ldd "$tmp/proj/build/hello" | grep -q "$libdir/libshmk.so.0"
echo "test_install: pkg-config and find_package, shared and static: ok"
