#!/usr/bin/env bash
# `make check` wherever the checkout lives (issue 12 item 18): a checkout under a directory
# other users cannot enter (/root, mode 0700) must still pass the tests that act as another
# user, whose mounts, images and programs would be out of that user's reach. This clones the
# checkout's HEAD into a fresh 0700 directory, builds there, and runs from there the scripts
# that act as the non-root user: test_mount.sh --other-users (posix_check's perm and acl
# groups, allow_other's permission checks), test_ioctl.sh and test_preload.sh, with BIN and the
# test programs inside the clone.
#
#   bash tests/integ/test_private_checkout.sh
#
# Environment: COWFS_TEST_DIR (scratch), COWFS_NONROOT_UID (default 65534), COWFS_KEEP=1,
# COWFS_CHECKOUT (the repository to clone: default this checkout; e.g. another commit's).
# What it tests is the committed HEAD (a clone), not uncommitted changes.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

REPO=${COWFS_CHECKOUT:-$(cd "$HERE/../.." && pwd)}
NONROOT_UID=${COWFS_NONROOT_UID:-65534}
for t in git make setpriv; do
	command -v "$t" >/dev/null || { echo "test_private_checkout: $t is missing" >&2; exit 1; }
done

lib_init test_private_checkout
PRIVATE=$(mktemp -d "$WORK/private.XXXXXX")
chmod 700 "$PRIVATE"
CLONE=$PRIVATE/cowfs
PROGS="build/tests/posix_check build/tests/preload_check build/tests/ioctl_check"

t_clone_and_build() {
	run git clone -q --no-hardlinks "$REPO" "$CLONE"
	[ "$LIB_RC" -eq 0 ] || { echo "    git clone $REPO: exit $LIB_RC"; show_output; return 1; }
	echo "    $(git -C "$CLONE" log --oneline -1)"
	# A plain build, whatever the make that runs this was given (`make check SAN=1` puts
	# SAN=1 in MAKEFLAGS and, as a command-line variable, in the environment too: either
	# would build into build-san/).
	# shellcheck disable=SC2086
	run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SAN -u BUILD make -C "$CLONE" -j2 build $PROGS
	[ "$LIB_RC" -eq 0 ] || { echo "    make build in the clone: exit $LIB_RC"; show_output; return 1; }
	# What makes this test mean something: the other user cannot reach the clone.
	if lib_as_user "$NONROOT_UID" test -x "$CLONE/build/bin/cowfs" 2>/dev/null; then
		echo "    uid $NONROOT_UID can reach $CLONE: the test would prove nothing"
		return 1
	fi
}

# in_clone SCRIPT ARGS...: one integration script of the clone, run from the clone as make
# check runs it.
in_clone() {
	local script=$1 rc=0
	shift
	(
		cd "$CLONE" &&
			BIN=build/bin COWFS_TEST_DIR=build/tmp POSIX_CHECK=build/tests/posix_check \
			PRELOAD_CHECK=build/tests/preload_check IOCTL_CHECK=build/tests/ioctl_check \
			COWFS_NONROOT_UID=$NONROOT_UID bash "tests/integ/$script" "$@"
	) >"$WORK/$script.log" 2>&1 || rc=$?
	grep -E '^(FAIL|SKIP)|: failed: |passed, ' "$WORK/$script.log" | sed 's/^/    /'
	if [ $rc -ne 0 ]; then
		echo "    $script $*: exit $rc; its last lines:"
		tail -15 "$WORK/$script.log" | sed 's/^/    | /'
	fi
	return $rc
}

if step "clone HEAD into a 0700 directory and build there" t_clone_and_build; then
	step "test_mount.sh --other-users from the clone" in_clone test_mount.sh --other-users
	step "test_ioctl.sh from the clone" in_clone test_ioctl.sh
	step "test_preload.sh from the clone" in_clone test_preload.sh
fi
lib_summary
