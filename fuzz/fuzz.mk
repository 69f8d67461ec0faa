# libFuzzer harnesses for the plain-C core (src/). Included by the top
# Makefile:
#
#   make fuzz               build every harness into build/fuzz/ and run each
#                           for FUZZ_TIME seconds (default 60), one at a time
#   make fuzz FUZZ_TARGETS="form cookie" FUZZ_TIME=600
#   make fuzz-build         build only
#   make fuzz-clean         remove build/fuzz (binaries, corpus copies, logs)
#
# Each harness runs on its own copy of the corpus, build/fuzz/corpus-NAME,
# seeded from fuzz/corpus/NAME; logs go to build/fuzz/logs/NAME.log and
# crashes to build/fuzz/NAME-crash-*. See fuzz/run.sh.
#
# The fragment leaves the including Makefile's default goal alone, wherever
# it is included.

FUZZ_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_TARGETS ?= cookie form record snapshot passwd id token

# The flags asked for: -g -O1 -fsanitize=fuzzer,address,undefined, plus
# -fno-sanitize-recover=undefined so that an UBSan finding is a crash that
# libFuzzer records with its input instead of a message it fuzzes past.
FUZZ_COMMON := -g -O1 -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
    -Isrc $(shell apr-1-config --cflags --cppflags --includes) \
    $(shell apu-1-config --includes)
FUZZ_CFLAGS := -fsanitize=fuzzer,address,undefined $(FUZZ_COMMON)
FUZZ_LIBS := $(shell apu-1-config --link-ld --libs) \
    $(shell apr-1-config --link-ld --libs) -lcrypto -lhiredis -lpthread

# The whole core goes into every harness: the files are small, plain C, and
# call each other (sd_utf8, sd_sha256, ...), so a list per harness would
# break whenever src/ is reorganised. The objects are built once, with
# -fsanitize=fuzzer-no-link (the same coverage and sanitizers, no main).
# The core only: the httpd glue (src/sdemo_*.c) needs httpd.
FUZZ_SRC := $(wildcard src/sd_*.c)
FUZZ_OBJ := $(patsubst src/%.c,build/fuzz/obj/%.o,$(FUZZ_SRC))
FUZZ_BIN := $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-build fuzz-clean
.SECONDARY: $(FUZZ_OBJ)

build/fuzz/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p build/fuzz/obj
	$(FUZZ_CC) -fsanitize=fuzzer-no-link,address,undefined $(FUZZ_COMMON) \
	    -c -o $@ $<

build/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_OBJ)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OBJ) $(FUZZ_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	FUZZ_TIME=$(FUZZ_TIME) sh fuzz/run.sh $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf build/fuzz

.DEFAULT_GOAL := $(FUZZ_SAVED_DEFAULT_GOAL)
