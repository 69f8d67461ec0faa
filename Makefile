# mod_session_demo: build, run the demo, test, install.
#
#   make            build .libs/mod_session_demo.so with apxs
#   make run        install what is missing, build, serve the demo on
#                   http://$(HOST):$(PORT)/ in the foreground
#   make run-https  the same over HTTPS on a self-signed certificate
#                   (https://127.0.0.1:8443/, PORT= to change)
#   make screenshots  the pages in Chromium, desktop and phone, into
#                   docs/screenshots/
#   make test       install what is missing, build, run every test
#   make unit       the C unit tests of src/ only
#   make install    apxs -i plus Debian-style session_demo.load/.conf
#   make bench      benchmarks (figures, never pass/fail)
#
# SANITIZE=1 builds the module and the unit tests with ASan and UBSan.

APXS ?= $(shell command -v apxs 2>/dev/null || echo /usr/bin/apxs)
PORT ?= 8080
HOST ?= 127.0.0.1
SANITIZE ?=

# The plain-C core (src/sd_*.c: APR, APR-util, OpenSSL, hiredis and libc
# only) and the httpd glue (mod_session_demo.c and src/sdemo_*.c).
CORE_SRC := $(sort $(wildcard src/sd_*.c))
GLUE_SRC := mod_session_demo.c $(sort $(wildcard src/sdemo_*.c)) $(wildcard sdemo_*.c)
HDRS := $(wildcard src/*.h) $(wildcard sdemo_*.h)
CORE_LIBS := -lcrypto -lhiredis
# TLS to Redis needs hiredis 1.0's hiredis_ssl (Debian 12 ships 0.14,
# without it): detected here, so that `rediss:` says what this build lacks.
HIREDIS_TLS := $(shell test -f /usr/include/hiredis/hiredis_ssl.h && echo 1 || echo 0)

WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
ifeq ($(SANITIZE),1)
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

APXS_CFLAGS := $(foreach f,$(WARN) -Isrc -std=gnu99 -DSD_HIREDIS_TLS=$(HIREDIS_TLS) $(SAN),-Wc,$(f))
comma := ,
APXS_LDFLAGS := $(if $(SAN),-Wl$(comma)-fsanitize=address$(comma)undefined) $(CORE_LIBS)

.PHONY: all deps deps-run run run-https build-quiet screenshots test unit check install clean bench fuzz

all: .libs/mod_session_demo.so

# Switching SANITIZE on or off rebuilds everything: the stamp names the
# mode the current objects were built in.
STAMP := build/.sanitize-$(if $(SANITIZE),on,off)
$(STAMP):
	@mkdir -p build
	@rm -f build/.sanitize-*
	@rm -rf .libs *.la *.lo *.slo *.o src/*.lo src/*.slo src/*.o src/.libs build/unit
	@mkdir -p build && touch $@

.libs/mod_session_demo.so: $(GLUE_SRC) $(CORE_SRC) $(HDRS) $(STAMP)
	@test -x "$(APXS)" || { echo "apxs not found: run 'make deps' (as root) or install apache2-dev, or set APXS=/path/to/apxs" >&2; exit 1; }
	$(APXS) -c $(APXS_CFLAGS) $(APXS_LDFLAGS) -o mod_session_demo.la $(GLUE_SRC) $(CORE_SRC)

deps:
	@sh scripts/install-deps.sh test

deps-run:
	@sh scripts/install-deps.sh run

run: deps-run build-quiet
	@PORT=$(PORT) HOST=$(HOST) APXS=$(APXS) sh scripts/run-demo.sh

# PORT= on the command line or in the environment wins; else 8443.
run-https: deps-run build-quiet
	@PORT=$(if $(filter command line environment,$(origin PORT)),$(PORT),8443) HOST=$(HOST) APXS=$(APXS) TLS=1 sh scripts/run-demo.sh

# The build for the run targets: silent, its output shown only if it fails.
build-quiet:
	@mkdir -p build
	@$(MAKE) --no-print-directory all >build/build.log 2>&1 || { cat build/build.log >&2; echo "the build failed (output above, also in build/build.log)" >&2; exit 1; }

# Screenshots of every page (desktop 1280x800, phone 390x844) by the
# browser suite's driver: Debian's Chromium, Playwright from npm.
screenshots:
	@SD_EXTRA_PKGS="chromium nodejs npm" sh scripts/install-deps.sh run
	@$(MAKE) --no-print-directory build-quiet
	@APXS=$(APXS) sh t/browser/run.sh --screenshots

# ---- unit tests: plain C against APR, no httpd -------------------------
APR_CFLAGS = $(shell apr-1-config --cflags --cppflags --includes) $(shell apu-1-config --includes)
APR_LIBS = $(shell apu-1-config --link-ld --libs) $(shell apr-1-config --link-ld --libs) $(CORE_LIBS) -lpthread
UNIT_SRC := $(wildcard t/unit/test_*.c)
UNIT_BIN := $(patsubst t/unit/%.c,build/unit/%.t,$(UNIT_SRC))

build/unit/%.t: t/unit/%.c $(wildcard t/unit/*.h) $(CORE_SRC) $(wildcard src/*.h) $(STAMP)
	@mkdir -p build/unit
	$(CC) -std=gnu99 -g -O1 $(WARN) $(SAN) -Isrc -It/unit $(APR_CFLAGS) -o $@ $< $(CORE_SRC) $(APR_LIBS)

unit: $(UNIT_BIN)
	prove -v --exec '' $(UNIT_BIN)

# The same module posing as a build with another store layout, for the
# upgrade test (t/upgrade.t): a graceful restart onto it must start with an
# empty store and say so, never read the old segment.
build/upgrade/layout99.so: $(GLUE_SRC) $(CORE_SRC) $(HDRS) $(STAMP)
	@mkdir -p build/upgrade
	$(CC) -shared -fPIC $(shell $(APXS) -q CFLAGS) $(shell $(APXS) -q EXTRA_CPPFLAGS) \
	    $(shell $(APXS) -q EXTRA_INCLUDES) -Isrc -std=gnu99 $(WARN) $(SAN) \
	    -DSD_SHM_LAYOUT=99 -o $@ $(GLUE_SRC) $(CORE_SRC) $(CORE_LIBS)

# Layers depend one way and every log tag is unique (scripts/check-source.sh).
check:
	@sh scripts/check-source.sh

test: deps all $(UNIT_BIN) build/upgrade/layout99.so check
	SANITIZE=$(SANITIZE) APXS=$(APXS) sh scripts/run-tests.sh $(UNIT_BIN)

install: all
	$(APXS) -i -n session_demo mod_session_demo.la
	sh scripts/install-debian.sh "$(APXS)"

bench: deps all
	sh bench/run.sh

clean:
	rm -rf .libs build *.la *.lo *.slo *.o src/*.lo src/*.slo src/*.o src/.libs t/logs

# libFuzzer harnesses of the core (make fuzz FUZZ_TIME=600): fuzz/README
include fuzz/fuzz.mk
