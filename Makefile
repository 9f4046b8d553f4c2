# A thin wrapper around CMake so that the everyday commands are short:
#   make            build (Release with debug info) into build/
#   make test       build, then run every test with ctest
#   make demo       build, then run the two-process buffer example
#   make bench      build, then run `shmk bench`: shmk beside pipes,
#                   sockets and peer libraries (about a minute)
#   make bench-peers  install the peer libraries and gnuplot, build the
#                   benchmark's peer plugins
#   make bench-more the detailed benchmarks (ring, sync, RPC; minutes)
#   make install    install (PREFIX=/usr/local by default)
#   make asan       build and test with AddressSanitizer + UBSan (build-asan/)
#   make tsan       the thread variants under ThreadSanitizer (build-tsan/)
#   make format     reformat the sources; make check-format only checks
#   make tidy       clang-tidy (analyser + bug-prone checks) on the library
#                   and the tool
#   make fuzz       build the libFuzzer targets with clang (build-fuzz/)
#   make fuzz-run   run each of them FUZZ_SECONDS (60) from fuzz/corpus/
# Each target first installs what it needs and is missing, through
# scripts/install-deps: `make` a C compiler, make and CMake only; `make
# test` adds pkg-config and binutils, `make format` and `make
# check-format` clang-format, `make tidy` clang-tidy, `make fuzz` clang;
# `make deps` installs all of them.

BUILD ?= build
PREFIX ?= /usr/local
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
SOURCES = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null || \
	find src include tools tests examples -name '*.[ch]')

.PHONY: all build test demo bench bench-peers bench-more install asan tsan \
	format check-format tidy deps clean fuzz fuzz-run

all: build

deps:
	@./scripts/install-deps

$(BUILD)/CMakeCache.txt:
	@./scripts/install-deps --quiet --build
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	@./scripts/install-deps --quiet --test
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600 -LE soak

demo: build
	$(BUILD)/examples/02_buffer

BENCH_ARGS ?=
bench: build
	$(BUILD)/shmk bench $(BENCH_ARGS)

bench-peers:
	./scripts/install-deps --build --bench-peers
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	$(BUILD)/shmk bench --list

bench-more: build
	$(BUILD)/bench/bench_ring
	@echo
	$(BUILD)/bench/bench_sync
	@echo
	$(BUILD)/bench/bench_rpc

# Into a system prefix as root: refresh the loader's cache, so that
# programs find libshmk.so at once.
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)
	@case "$(PREFIX)" in /usr|/usr/|/usr/local|/usr/local/) \
		if [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
			ldconfig; fi ;; esac

asan:
	$(MAKE) test BUILD=build-asan \
		CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DSHMK_SANITIZE=address,undefined $(CMAKE_FLAGS)"

tsan:
	$(MAKE) test BUILD=build-tsan \
		CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DSHMK_SANITIZE=thread $(CMAKE_FLAGS)"

format:
	@./scripts/install-deps --quiet --format
	clang-format -i $(SOURCES)

check-format:
	@./scripts/install-deps --quiet --format
	@clang-format --dry-run --Werror $(SOURCES) && \
		echo "check-format: $(words $(SOURCES)) files formatted"

tidy: build
	@./scripts/install-deps --quiet --tidy
	@# One file per run: clang-tidy 14's va_list check reports false
	@# positives when several files share a run.
	@set -e; for f in src/*.c src/region/*.c src/ring/*.c src/rpc/*.c \
		src/topic/*.c tools/shmk/*.c; do \
		clang-tidy -p $(BUILD) --quiet $$f; done; \
		echo "tidy: no findings"

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

fuzz:
	@./scripts/install-deps --quiet --build --fuzz
	@test -f $(FUZZ_BUILD)/CMakeCache.txt || \
		cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang \
		-DSHMK_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz

fuzz-run: fuzz
	fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf build build-*
