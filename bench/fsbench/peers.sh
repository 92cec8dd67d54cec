# Peers of the filesystem benchmark: set up, mount, make cold, unmount, tear down.
# Sourced by run.sh (bash). Every peer lives in $DIR/PEER/: its image file PEER.img (4 GiB,
# sparse) and its mountpoint mnt/. Teardown is derived from those paths only (mounts under the
# directory, loop devices bound to the image, daemons whose command line names the image or our
# pidfile), so it also removes what an earlier, killed run left behind.
#
# Functions return non-zero and set PEER_ERR on failure; they never exit. Daemons are started
# with fd 9 (run.sh's lock on $DIR/.lock) closed, so a leftover daemon never holds the lock.

ALL_PEERS="cowfs btrfs xfs fuse2fs zfs-fuse"
ZPOOL=fsbench           # zfs-fuse pool name; dataset $ZPOOL/bench
PEER_ERR=""

peer_dir() { printf '%s/%s' "$DIR" "$1"; }
peer_img() { printf '%s/%s/%s.img' "$DIR" "$1" "$1"; }
peer_mnt() { printf '%s/%s/mnt' "$DIR" "$1"; }
zfs_pidfile() { printf '%s/zfs-fuse/zfs-fuse.pid' "$DIR"; }

# Debian packages each peer needs (fio and python3 are needed by all: see run.sh).
peer_packages() {
	case $1 in
	cowfs) echo "" ;;
	btrfs) echo "btrfs-progs" ;;
	xfs) echo "xfsprogs" ;;
	fuse2fs) echo "fuse2fs e2fsprogs" ;;
	zfs-fuse) echo "zfs-fuse" ;;
	esac
}

is_mounted() { findmnt -rn -M "$1" >/dev/null 2>&1; }

# A process is alive if /proc/PID exists and it is not a zombie.
pid_alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# PIDs of live processes whose command line contains $1 and whose executable's name is $2.
pids_by_arg() {
	local pid exe
	for pid in $(pgrep -f -- "$1" 2>/dev/null); do
		[ "$pid" = "$$" ] && continue
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
		exe=${exe% (deleted)}
		[ "${exe##*/}" = "$2" ] || continue
		pid_alive "$pid" && echo "$pid"
	done
}

# Wait until none of the given PIDs is alive; $1 = seconds. Returns 1 on timeout.
wait_pids_gone() {
	local secs=$1 pid alive i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		alive=0
		for pid in "$@"; do pid_alive "$pid" && alive=1; done
		[ $alive = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# TERM, wait $1 s, KILL, wait 5 s.
stop_pids() {
	local secs=$1
	shift
	[ $# -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null
	wait_pids_gone "$secs" "$@" && return 0
	kill -KILL "$@" 2>/dev/null
	wait_pids_gone 5 "$@"
}

wait_mounted() {   # MNT SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		is_mounted "$1" && return 0
		sleep 0.1
	done
	return 1
}

# umount, retrying a few times if busy; lazy unmount as a last resort when $2 = force.
umount_retry() {
	local mnt=$1 i
	is_mounted "$mnt" || return 0
	for i in 1 2 3 4 5; do
		umount "$mnt" 2>/dev/null && return 0
		is_mounted "$mnt" || return 0
		sleep 1
	done
	if [ "${2:-}" = force ]; then
		umount -l "$mnt" 2>/dev/null
		! is_mounted "$mnt"
		return
	fi
	PEER_ERR="umount $mnt: busy"
	return 1
}

drop_caches() {
	sync
	if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
		[ -n "${DROP_WARNED:-}" ] || log "warning: cannot write /proc/sys/vm/drop_caches: caches are not dropped"
		DROP_WARNED=1
	fi
}

# The FUSE daemon serving a peer's image (cowfs, fuse2fs).
fuse_daemon_exe() { case $1 in cowfs) echo cowfs ;; fuse2fs) echo fuse2fs ;; esac; }
fuse_daemon_pids() { pids_by_arg "$(peer_img "$1")" "$(fuse_daemon_exe "$1")"; }

# Peak RSS (VmHWM) and current RSS, in KiB, of a peer's daemon(s); "" if there is none.
# For cowfs and fuse2fs each mount is a new daemon, so callers sample before every unmount.
daemon_pids() {
	case $1 in
	cowfs | fuse2fs) fuse_daemon_pids "$1" ;;
	zfs-fuse) zfs_daemon_pids ;;
	esac
}
sample_rss() {   # PEER STEP: records the daemon's VmHWM into the results
	local peer=$1 step=$2 pid hwm rss
	for pid in $(daemon_pids "$peer"); do
		hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
		rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
		[ -n "$hwm" ] || continue
		record_rss "$peer" "$step" "$pid" "$hwm" "$rss"
	done
}

# ---------------------------------------------------------------- loop-device peers (kernel)

loop_of() { losetup --list -n -O NAME -j "$1" 2>/dev/null | head -n1; }

kernel_mkfs() {   # PEER DEV
	case $1 in
	btrfs) mkfs.btrfs -f -q "$2" ;;
	xfs) mkfs.xfs -f -q "$2" ;;
	esac
}

kernel_mount() {
	local peer=$1 img mnt dev
	img=$(peer_img "$peer")
	mnt=$(peer_mnt "$peer")
	is_mounted "$mnt" && return 0
	dev=$(loop_of "$img")
	if [ -z "$dev" ]; then
		dev=$(losetup -f --show "$img" 2>&1) || { PEER_ERR="losetup: $dev"; return 1; }
	fi
	local out
	out=$(mount -t "$peer" "$dev" "$mnt" 2>&1) || { PEER_ERR="mount $dev: $out"; return 1; }
}

kernel_umount() { umount_retry "$(peer_mnt "$1")"; }

kernel_setup() {
	local peer=$1 img mnt dev out
	img=$(peer_img "$peer")
	mnt=$(peer_mnt "$peer")
	grep -qw "$peer" /proc/filesystems || { PEER_ERR="kernel has no $peer support (/proc/filesystems)"; return 1; }
	truncate -s "$IMAGE_SIZE" "$img" || { PEER_ERR="truncate $img failed"; return 1; }
	dev=$(losetup -f --show "$img" 2>&1) || { PEER_ERR="losetup: $dev"; return 1; }
	out=$(kernel_mkfs "$peer" "$dev" 2>&1) || { PEER_ERR="mkfs.$peer: $(tail -n1 <<<"$out")"; return 1; }
	kernel_mount "$peer"
}

kernel_teardown() {
	local peer=$1 img mnt dev
	img=$(peer_img "$peer")
	mnt=$(peer_mnt "$peer")
	umount_retry "$mnt" force
	for dev in $(losetup --list -n -O NAME -j "$img" 2>/dev/null); do
		losetup -d "$dev" 2>/dev/null || log "warning: losetup -d $dev failed"
	done
}

# ---------------------------------------------------------------- FUSE peers: cowfs, fuse2fs

fuse_mount() {
	local peer=$1 img mnt out rc
	img=$(peer_img "$peer")
	mnt=$(peer_mnt "$peer")
	is_mounted "$mnt" && return 0
	# Output to a file, not $(...): a daemon that keeps stdout open would make $(...) wait forever.
	local log
	log="$(peer_dir "$peer")/mount.out"
	case $peer in
	cowfs)
		if [ -n "$COWFS_OPTS" ]; then
			timeout 60 "$COWFS_BIN/cowfs" "$img" "$mnt" -o "$COWFS_OPTS" >"$log" 2>&1 </dev/null 9>&-
		else
			timeout 60 "$COWFS_BIN/cowfs" "$img" "$mnt" >"$log" 2>&1 </dev/null 9>&-
		fi
		rc=$? ;;
	fuse2fs)
		timeout 60 fuse2fs "$img" "$mnt" >"$log" 2>&1 </dev/null 9>&-
		rc=$? ;;
	esac
	out=$(cat "$log" 2>/dev/null)
	if [ $rc -ne 0 ]; then
		PEER_ERR="$peer mount failed (exit $rc): $(tail -n2 <<<"$out" | tr '\n' ' ')"
		return 1
	fi
	if ! wait_mounted "$mnt" 10; then
		PEER_ERR="$peer exited 0 but $mnt is not mounted: $(tail -n2 <<<"$out" | tr '\n' ' ')"
		stop_pids 5 $(fuse_daemon_pids "$peer")
		return 1
	fi
}

# Unmount and wait for the daemon to exit (it flushes its state on the way out), so the image is
# complete before anything reads it again.
fuse_umount() {
	local peer=$1 mnt pids
	mnt=$(peer_mnt "$peer")
	pids=$(fuse_daemon_pids "$peer")
	[ -n "$pids" ] && sample_rss "$peer" "before the cold remount of ${CUR_STEP:-?}"
	umount_retry "$mnt" || return 1
	[ -n "$pids" ] || return 0
	if ! wait_pids_gone "$UMOUNT_WAIT" $pids; then
		PEER_ERR="$peer daemon (pid $pids) still running ${UMOUNT_WAIT}s after umount: killed"
		stop_pids 5 $pids
		return 1
	fi
}

fuse_setup() {
	local peer=$1 img mnt out
	img=$(peer_img "$peer")
	mnt=$(peer_mnt "$peer")
	grep -qw fuse /proc/filesystems && [ -c /dev/fuse ] || { PEER_ERR="no FUSE in this kernel (/dev/fuse)"; return 1; }
	case $peer in
	cowfs)
		[ -x "$COWFS_BIN/mkfs.cowfs" ] || { PEER_ERR="$COWFS_BIN/mkfs.cowfs not built"; return 1; }
		[ -x "$COWFS_BIN/cowfs" ] || { PEER_ERR="$COWFS_BIN/cowfs not built"; return 1; }
		out=$("$COWFS_BIN/mkfs.cowfs" -f -q -s "$IMAGE_SIZE" "$img" 2>&1) ||
			{ PEER_ERR="mkfs.cowfs: $(tail -n1 <<<"$out")"; return 1; } ;;
	fuse2fs)
		truncate -s "$IMAGE_SIZE" "$img" || { PEER_ERR="truncate $img failed"; return 1; }
		out=$(mkfs.ext4 -F -q "$img" 2>&1) || { PEER_ERR="mkfs.ext4: $(tail -n1 <<<"$out")"; return 1; } ;;
	esac
	fuse_mount "$peer"
}

fuse_teardown() {
	local peer=$1 mnt pids
	mnt=$(peer_mnt "$peer")
	pids=$(fuse_daemon_pids "$peer")
	[ -n "$pids" ] && is_mounted "$mnt" && sample_rss "$peer" "at teardown"
	if ! umount_retry "$mnt" && [ -n "$pids" ]; then
		# Busy or hung: stopping the daemon aborts the connection, then the lazy umount below.
		log "warning: cannot unmount $mnt: stopping the $peer daemon (pid $pids)"
		stop_pids 5 $pids
	fi
	pids=$(fuse_daemon_pids "$peer")
	if [ -n "$pids" ] && ! wait_pids_gone "$UMOUNT_WAIT" $pids; then
		log "warning: $peer daemon (pid $pids) did not exit after umount: killing it"
		stop_pids 5 $pids
	fi
	# A daemon that died leaves its mount behind ("Transport endpoint is not connected").
	umount_retry "$mnt" force
}

# ---------------------------------------------------------------- zfs-fuse

# zfs-fuse daemons started by this harness (their command line names our pidfile).
zfs_our_daemons() { pids_by_arg "$(zfs_pidfile)" zfs-fuse; }
# Any zfs-fuse daemon: ours, or the system's one (one daemon serves every pool of the machine).
zfs_daemon_pids() {
	local pid
	for pid in $(pgrep -x zfs-fuse 2>/dev/null); do pid_alive "$pid" && echo "$pid"; done
}

zfs_daemon_start() {
	local pidf i out
	pidf=$(zfs_pidfile)
	if [ -n "$(zfs_daemon_pids)" ]; then
		if [ -z "$(zfs_our_daemons)" ]; then
			ZFS_FOREIGN=1
			log "zfs-fuse: using the zfs-fuse daemon already running (pid $(zfs_daemon_pids | tr '\n' ' ')); it is left running"
		fi
	else
		rm -f "$pidf"
		# The same limits as Debian's /etc/init.d/zfs-fuse (ulimit -l is not permitted here).
		out="$(peer_dir zfs-fuse)/daemon.out"
		if ! (ulimit -v unlimited; ulimit -c 512000; ulimit -s unlimited; unset LANG
			exec timeout 60 zfs-fuse --pidfile "$pidf") >"$out" 2>&1 </dev/null 9>&-; then
			PEER_ERR="zfs-fuse daemon failed to start: $(tail -n1 "$out")"
			return 1
		fi
	fi
	# The daemon answers zpool once its socket is up.
	for ((i = 0; i < 100; i++)); do
		zpool list >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	PEER_ERR="zfs-fuse daemon started but zpool does not answer after 10 s"
	return 1
}

zfs_pool_imported() { zpool list -H -o name "$ZPOOL" >/dev/null 2>&1; }

zfs_setup() {
	local img mnt out
	img=$(peer_img zfs-fuse)
	mnt=$(peer_mnt zfs-fuse)
	grep -qw fuse /proc/filesystems && [ -c /dev/fuse ] || { PEER_ERR="no FUSE in this kernel (/dev/fuse)"; return 1; }
	zfs_daemon_start || return 1
	if zfs_pool_imported; then
		PEER_ERR="a pool named $ZPOOL already exists and is not ours (image $(zpool status "$ZPOOL" 2>/dev/null | awk '/\.img/ {print $1; exit}'))"
		return 1
	fi
	truncate -s "$IMAGE_SIZE" "$img" || { PEER_ERR="truncate $img failed"; return 1; }
	# cachefile=none: the pool is never imported again behind our back by a restarted daemon.
	out=$(zpool create -f -o cachefile=none -m none "$ZPOOL" "$img" 2>&1) ||
		{ PEER_ERR="zpool create: $(tail -n1 <<<"$out")"; return 1; }
	out=$(zfs create -o mountpoint="$mnt" "$ZPOOL/bench" 2>&1) ||
		{ PEER_ERR="zfs create: $(tail -n1 <<<"$out")"; return 1; }
	wait_mounted "$mnt" 10 || { PEER_ERR="zfs dataset created but $mnt is not mounted"; return 1; }
}

# "Unmount" = export the pool (drops its ARC buffers); "mount" = import it (mounts the dataset).
zfs_umount() {
	local out
	zfs_pool_imported || return 0
	sample_rss zfs-fuse "before the cold remount of ${CUR_STEP:-?}"
	out=$(zpool export "$ZPOOL" 2>&1) || { PEER_ERR="zpool export: $(tail -n1 <<<"$out")"; return 1; }
}

zfs_mount() {
	local out mnt
	mnt=$(peer_mnt zfs-fuse)
	if ! zfs_pool_imported; then
		out=$(zpool import -d "$(peer_dir zfs-fuse)" -o cachefile=none "$ZPOOL" 2>&1) ||
			{ PEER_ERR="zpool import: $(tail -n1 <<<"$out")"; return 1; }
	fi
	wait_mounted "$mnt" 10 || { PEER_ERR="pool imported but $mnt is not mounted"; return 1; }
}

zfs_teardown() {
	local mnt img pids
	mnt=$(peer_mnt zfs-fuse)
	img=$(peer_img zfs-fuse)
	if [ -n "$(zfs_daemon_pids)" ] && zfs_pool_imported; then
		# Only a pool whose vdev is our image is ours to export or destroy.
		if zpool status "$ZPOOL" 2>/dev/null | grep -qF "$img"; then
			sample_rss zfs-fuse "at teardown"
			local out
			if [ -n "$KEEP" ]; then
				out=$(zpool export "$ZPOOL" 2>&1) || out=$(zpool export -f "$ZPOOL" 2>&1) ||
					log "warning: zpool export $ZPOOL failed: $out"
			else
				# Right after a workload the pool can be "busy" for a moment: unmount, retry.
				local i
				for i in 1 2 3 4 5; do
					zfs unmount -f "$ZPOOL/bench" >/dev/null 2>&1
					out=$(zpool destroy -f "$ZPOOL" 2>&1) && break
					sleep 1
				done
				zfs_pool_imported && { log "warning: zpool destroy $ZPOOL failed: $out"
					zpool export -f "$ZPOOL" >/dev/null 2>&1; }
			fi
		fi
	fi
	pids=$(zfs_our_daemons)
	if [ -n "$pids" ]; then
		# The daemon takes a few seconds to stop after TERM (it lets its workers finish).
		stop_pids 20 $pids || log "warning: zfs-fuse daemon $pids survived SIGKILL"
	fi
	rm -f "$(zfs_pidfile)"
	umount_retry "$mnt" force
}

# ---------------------------------------------------------------- dispatch

peer_setup() {
	local peer=$1
	PEER_ERR=""
	peer_teardown "$peer"
	rm -f "$(peer_img "$peer")"
	mkdir -p "$(peer_mnt "$peer")"
	case $peer in
	btrfs | xfs) kernel_setup "$peer" ;;
	cowfs | fuse2fs) fuse_setup "$peer" ;;
	zfs-fuse) zfs_setup ;;
	esac
}

peer_mount() {
	PEER_ERR=""
	case $1 in
	btrfs | xfs) kernel_mount "$1" ;;
	cowfs | fuse2fs) fuse_mount "$1" ;;
	zfs-fuse) zfs_mount ;;
	esac
}

peer_umount() {
	PEER_ERR=""
	case $1 in
	btrfs | xfs) kernel_umount "$1" ;;
	cowfs | fuse2fs) fuse_umount "$1" ;;
	zfs-fuse) zfs_umount ;;
	esac
}

# Cold caches, the same for every peer: sync, unmount (FUSE: and wait for the daemon to exit;
# zfs-fuse: export the pool), drop the kernel's page/dentry/inode caches, mount again.
peer_cold() {
	local peer=$1
	sync
	peer_umount "$peer" || return 1
	drop_caches
	peer_mount "$peer"
}

# Idempotent; safe on a peer that was never set up. Removes the image unless --keep.
peer_teardown() {
	local peer=$1
	case $peer in
	btrfs | xfs) kernel_teardown "$peer" ;;
	cowfs | fuse2fs) fuse_teardown "$peer" ;;
	zfs-fuse) zfs_teardown ;;
	esac
	# After the real run (not at startup, not on interrupt): is the cowfs image still consistent?
	if [ "$peer" = cowfs ] && [ -n "${FSCK_COWFS:-}" ] && [ -f "$(peer_img cowfs)" ] &&
		[ -x "$COWFS_BIN/fsck.cowfs" ] && ! is_mounted "$(peer_mnt cowfs)"; then
		local out rc
		out=$(timeout 900 "$COWFS_BIN/fsck.cowfs" "$(peer_img cowfs)" 2>&1 9>&-)
		rc=$?
		out=$(tail -n1 <<<"$out")
		FSCK_RESULT="exit $rc: ${out#"$(peer_img cowfs)": }"
		log "fsck.cowfs after the run: $FSCK_RESULT"
		FSCK_COWFS=""
	fi
	[ -n "$KEEP" ] || rm -f "$(peer_img "$peer")"
}
