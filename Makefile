# cowfs build. `make` builds, `make check` installs missing packages, builds and runs every
# test, `make check SAN=1` does the same under AddressSanitizer + UndefinedBehaviorSanitizer.
# Objects go to build/ (build-san/ with SAN=1) so both builds can coexist.

PREFIX   ?= /usr/local
CC       ?= cc
SAN      ?= 0
PKGS     := liburing libxxhash
TESTPKGS := check

ifeq ($(SAN),1)
BUILD    := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT      := -O1
else
BUILD    := build
SANFLAGS :=
OPT      := -O2
endif

CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers \
            -D_GNU_SOURCE -I. $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)

# The pkg-config queries run only when a target needs them, after `deps` may have installed them.
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
TEST_CFLAGS = $(shell pkg-config --cflags $(TESTPKGS) 2>/dev/null)
TEST_LIBS   = $(shell pkg-config --libs $(TESTPKGS) 2>/dev/null)

LIB_SRCS   := $(sort $(wildcard fs/*/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB        := $(BUILD)/libcowfs.a

SUPPORT_SRCS := $(sort $(wildcard tests/support/*.c))
SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# Each program is one main .c file: tools/X.c, mkfs/X.c and fsck/X.c become bin/X. These are
# the programs `make install` installs, and nothing else: tests and demos are built elsewhere.
# mkfs.cowfs and fsck.cowfs go to sbin, where mkfs(8) and fsck(8) look (USER_BINS: bin).
USER_BINS  := $(addprefix $(BUILD)/bin/,$(basename $(notdir $(sort $(wildcard tools/*.c)))))
ADMIN_BINS := $(addprefix $(BUILD)/bin/,$(basename $(notdir $(sort $(wildcard mkfs/*.c fsck/*.c)))))
TOOL_BINS  := $(USER_BINS) $(ADMIN_BINS)
# The cowfs program's commands (tools/CMD/, one directory each: dump, status, ...) are linked into
# it; tools/preload/ is the preload shim, a shared library of its own.
CMD_SRCS   := $(sort $(filter-out tools/preload/%,$(wildcard tools/*/*.c)))
CMD_OBJS   := $(CMD_SRCS:%.c=$(BUILD)/%.o)

# The preload shim (docs/PRELOAD.md): a shared library loaded into other programs, so position
# independent with only its entry points exported (ioctl, sync, syncfs). SAN=1 builds it with
# UBSan alone: an ASan runtime must come first in a process, which a preloaded library is not.
SHIM_SRCS  := $(sort $(wildcard tools/preload/*.c))
SHIM_OBJS  := $(SHIM_SRCS:%.c=$(BUILD)/shim/%.o)
SHIM_LIB   := $(BUILD)/lib/libcowfs-preload.so
SHIM_SAN   := $(if $(filter 1,$(SAN)),-fsanitize=undefined -fno-sanitize-recover=all)
SHIM_CFLAGS = $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) $(SHIM_SAN) \
              -fPIC -fvisibility=hidden

# The FUSE server (fuse/) is linked into the cowfs program only: nothing below it sees FUSE.
FUSE_SRCS  := $(sort $(wildcard fuse/*.c))
FUSE_OBJS  := $(FUSE_SRCS:%.c=$(BUILD)/%.o)
FUSE_CFLAGS = $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS   = $(shell pkg-config --libs fuse3 2>/dev/null)

# Integration test programs: standalone (no libcowfs), they run against a mounted directory.
FSX_BIN    := $(BUILD)/tests/fsx
POSIX_BIN  := $(BUILD)/tests/posix_check
CHURN_BIN  := $(BUILD)/tests/share_churn
PRELOAD_CHECK_BIN := $(BUILD)/tests/preload_check
IOCTL_BIN  := $(BUILD)/tests/ioctl_check
INTEG_BINS := $(FSX_BIN) $(POSIX_BIN) $(CHURN_BIN) $(PRELOAD_CHECK_BIN) $(IOCTL_BIN)
# The integration test scripts `make check` runs, in this order (each mounts what it needs).
INTEG_SCRIPTS := tests/integ/test_tools.sh tests/integ/test_mount.sh tests/integ/test_churn.sh \
		 tests/integ/test_clone_bugs.sh tests/integ/test_cli.sh tests/integ/test_dedupe.sh \
		 tests/integ/test_preload.sh tests/integ/test_ioctl.sh \
		 tests/integ/test_fio_jobs.sh tests/integ/test_namespace.sh \
		 tests/integ/test_prealloc_statfs.sh tests/integ/test_remount.sh \
		 tests/integ/test_odirect.sh tests/integ/test_private_checkout.sh \
		 tests/integ/test_privbits.sh tests/integ/test_subvol.sh \
		 tests/integ/test_subvol_cli.sh tests/integ/test_subvol_delete.sh \
		 tests/integ/test_snapshot_stream.sh

BENCH_BIN  := $(BUILD)/bench/btree_bench
BENCH_FS_BIN := $(BUILD)/bench/fs_bench
BENCH_EXCL_BIN := $(BUILD)/bench/exclusive_bench
# The bare B+tree demo (`make demo`). Built with the programs so it keeps compiling, but not
# installed: it keeps block references in memory with tests/support/memrefs.c.
DEMO_BIN   := $(BUILD)/bench/btree_demo

# Where tests put their scratch images.
TEST_DIR   := $(BUILD)/tmp
# Check's per-test timeout (seconds): generous, since SAN builds are several times slower.
export CK_DEFAULT_TIMEOUT := 900

.PHONY: all build deps deps-bench check unit stress run demo bench bench-fs bench-exclusive bench-peers \
	bench-memory bench-snapshot install uninstall clean
# deps first, then the build: with -j, make would otherwise compile before the headers exist.
all: deps
	@$(MAKE) --no-print-directory build
build: $(LIB) $(TOOL_BINS) $(SHIM_LIB) $(DEMO_BIN)

deps:
	@./scripts/install-deps.sh
deps-bench:
	@./scripts/install-deps.sh --bench

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(TEST_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# A unit test of the cowfs program's own code names the tools/ objects it tests as prerequisites
# of its own (below); they are linked in with it.
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(SUPPORT_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(filter $(BUILD)/tools/%.o,$^) $(SUPPORT_OBJS) $(LIB) \
		$(TEST_LIBS) $(PKG_LIBS)
$(BUILD)/tests/test_subvol_format: $(addprefix $(BUILD)/tools/,subvol/format.o subvol/path.o \
	subvol/errors.o dump/out.o share/size.o share/mount_ioctl.o)
$(BUILD)/tests/test_subvol_cmds: $(filter $(BUILD)/tools/subvol/%,$(CMD_OBJS)) \
	$(addprefix $(BUILD)/tools/,dump/out.o share/size.o share/mount_ioctl.o share/cli.o)
# Some tests run the programs ($COWFS_BIN): building a test brings them up to date as well.
$(UNIT_BINS): | $(TOOL_BINS)

$(FUSE_OBJS): CFLAGS += $(FUSE_CFLAGS)
$(BUILD)/bin/cowfs: $(BUILD)/tools/cowfs.o $(CMD_OBJS) $(FUSE_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(FUSE_LIBS) $(PKG_LIBS)
$(BUILD)/bin/%: $(BUILD)/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(BUILD)/bin/%: $(BUILD)/mkfs/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(BUILD)/bin/%: $(BUILD)/fsck/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/shim/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -MMD -MP -c $< -o $@
$(SHIM_LIB): $(SHIM_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-z,defs $(SHIM_SAN) -o $@ $^ -ldl -lpthread

$(BUILD)/tests/%: $(BUILD)/tests/integ/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread

$(BENCH_BIN): $(BUILD)/bench/btree_bench.o $(BUILD)/bench/bench_util.o $(BUILD)/tests/support/memrefs.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -llmdb $(PKG_LIBS)

$(BENCH_FS_BIN): $(BUILD)/bench/fs_bench.o $(BUILD)/bench/bench_util.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BENCH_EXCL_BIN): $(BUILD)/bench/exclusive_bench.o $(BUILD)/bench/bench_util.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(DEMO_BIN): $(BUILD)/bench/btree_demo.o $(BUILD)/tests/support/memrefs.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Every unit test binary runs even if an earlier one failed; the target fails if any did.
check: deps
	@$(MAKE) --no-print-directory unit

unit: $(LIB) $(UNIT_BINS) $(TOOL_BINS) $(SHIM_LIB) $(DEMO_BIN) $(INTEG_BINS)
	@mkdir -p $(TEST_DIR)
	@fail=0; pass=0; \
	for t in $(UNIT_BINS); do \
		echo "== $$t"; \
		if COWFS_TEST_DIR=$(TEST_DIR) COWFS_BIN=$(BUILD)/bin $$t; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; \
	for t in $(INTEG_SCRIPTS); do \
		echo "== $$t"; \
		if BIN=$(BUILD)/bin COWFS_TEST_DIR=$(TEST_DIR) POSIX_CHECK=$(POSIX_BIN) FSX=$(FSX_BIN) \
		   SHARE_CHURN=$(CHURN_BIN) PRELOAD_CHECK=$(PRELOAD_CHECK_BIN) IOCTL_CHECK=$(IOCTL_BIN) \
		   bash $$t; then pass=$$((pass+1)); \
		else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; \
	echo "programs: $$pass passed, $$fail failed"; \
	[ $$fail -eq 0 ]

# Longer runs of the mount tests: 400,000 fsx operations and fsx across unmount/fsck/remount
# cycles, on a bigger image.
stress: deps
	@$(MAKE) --no-print-directory $(LIB) $(TOOL_BINS) $(INTEG_BINS)
	@mkdir -p $(TEST_DIR)
	BIN=$(BUILD)/bin COWFS_TEST_DIR=$(TEST_DIR) POSIX_CHECK=$(POSIX_BIN) FSX=$(FSX_BIN) \
		bash tests/integ/test_mount.sh --big

# The main job: make the default image if it is missing, check it, mount it at $(MOUNTPOINT),
# show it working (scripts/run.sh). `make demo` runs the B+tree demo on a scratch image.
IMAGE ?= cowfs.img
MOUNTPOINT ?= mnt
run: all
	@scripts/run.sh $(BUILD)/bin $(IMAGE) $(MOUNTPOINT)

demo: all
	$(DEMO_BIN) $(BUILD)/demo.img

bench: deps-bench
	@$(MAKE) --no-print-directory $(BENCH_BIN)
	$(BENCH_BIN) --dir $(BUILD)/bench-tmp
	@$(MAKE) --no-print-directory bench-fs
	@$(MAKE) --no-print-directory bench-peers

# Filesystem figures: commit latency for 1,000 and 100,000 dirty tree blocks, fsck on an image
# of 1,000,000 extents (bench/README.md). Needs ~10 GiB free in $(BUILD)/bench-tmp at peak.
bench-fs: deps
	@$(MAKE) --no-print-directory $(BENCH_FS_BIN) $(BUILD)/bin/fsck.cowfs
	@mkdir -p $(BUILD)/bench-tmp
	$(BENCH_FS_BIN) --dir $(BUILD)/bench-tmp --fsck-bin $(BUILD)/bin/fsck.cowfs

# Exclusive space of subvolumes, from reference counts against the brute-force recount, on a
# subvolume of 100,000 small files alone, just snapshotted, and diverged (bench/README.md).
bench-exclusive: deps
	@$(MAKE) --no-print-directory $(BENCH_EXCL_BIN)
	@mkdir -p $(BUILD)/bench-tmp
	$(BENCH_EXCL_BIN) --dir $(BUILD)/bench-tmp

# The mounted filesystem against its peers (bench/fsbench, bench/README.md): kernel btrfs and xfs
# on loop devices, fuse2fs, zfs-fuse, in the same run. Root; installs its packages itself; up to
# ~10 GiB in $(BUILD)/fsbench-tmp; ~30-45 min at --runs 3. Smoke test: FSBENCH_ARGS=--quick.
FSBENCH_ARGS ?= --runs 3
bench-peers: all
	bench/fsbench/run.sh --dir $(BUILD)/fsbench-tmp --cowfs-bin $(BUILD)/bin $(FSBENCH_ARGS)

# The daemon's resident memory under 3 fsx + a metadata stress at cache_size 16M and 256M
# (bench/memory, bench/README.md). Root; ~5 min at the defaults. MEMORY_ARGS: run.sh's options.
MEMORY_ARGS ?=
bench-memory: all
	@$(MAKE) --no-print-directory $(FSX_BIN)
	bench/memory/run.sh --dir $(BUILD)/memory-tmp --cowfs-bin $(BUILD)/bin $(MEMORY_ARGS)

# Snapshots, their deletion and their exclusive bytes against kernel btrfs on a loop device and
# zfs-fuse (bench/snapshot, bench/README.md). Root; ~1 GiB in $(BUILD)/snapshot-bench-tmp;
# ~5 min. SNAPSHOT_ARGS: run.sh's options (--quick: 5,000 files, 3 repetitions).
SNAPSHOT_ARGS ?=
bench-snapshot: deps-bench
	@$(MAKE) --no-print-directory build
	bench/snapshot/run.sh --dir $(BUILD)/snapshot-bench-tmp --cowfs-bin $(BUILD)/bin $(SNAPSHOT_ARGS)

# `make install PREFIX=/usr DESTDIR=/tmp/stage` for a package. The mount helper goes to /sbin
# whatever PREFIX is (mount(8) runs /sbin/mount.fuse.TYPE) and points at the installed cowfs:
# the link's target is where cowfs will be once installed, not under DESTDIR.
MAN_PAGES  := $(sort $(wildcard man/*.8))
COMPLETION := completion/cowfs
MOUNT_HELPER_DIR ?= /sbin
INSTALLED  := $(addprefix $(PREFIX)/bin/,$(notdir $(USER_BINS))) \
	      $(addprefix $(PREFIX)/sbin/,$(notdir $(ADMIN_BINS))) $(PREFIX)/sbin/fsck.fuse.cowfs \
	      $(PREFIX)/lib/$(notdir $(SHIM_LIB)) \
	      $(addprefix $(PREFIX)/share/man/man8/,$(notdir $(MAN_PAGES))) \
	      $(PREFIX)/share/bash-completion/completions/cowfs \
	      $(MOUNT_HELPER_DIR)/mount.fuse.cowfs

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(MOUNT_HELPER_DIR)
	install -m 755 $(USER_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(ADMIN_BINS) $(DESTDIR)$(PREFIX)/sbin/
	# fstab names the type fuse.cowfs, so fsck -A (boot-time checks) runs fsck.fuse.cowfs.
	ln -sfn fsck.cowfs $(DESTDIR)$(PREFIX)/sbin/fsck.fuse.cowfs
	# cowfs-run finds it as ../lib/libcowfs-preload.so from its own directory.
	install -m 755 $(SHIM_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(MAN_PAGES) $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 644 $(COMPLETION) $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cowfs
	# mount -t fuse.cowfs, fstab and mount -o remount: mount(8) runs /sbin/mount.fuse.cowfs,
	# which is the cowfs program under that name (a remount must reach the running server,
	# which mount.fuse3 cannot: it would start a second one).
	ln -sfn $(PREFIX)/bin/cowfs $(DESTDIR)$(MOUNT_HELPER_DIR)/mount.fuse.cowfs

# What install put there; and mkfs.cowfs and fsck.cowfs in bin, where installs before
# issue 12 put them.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED)) \
		$(addprefix $(DESTDIR)$(PREFIX)/bin/,$(notdir $(ADMIN_BINS)))

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
