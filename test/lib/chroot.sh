# test/lib/chroot.sh
# shellcheck shell=bash
#
# PostgreSQL majors this Debian 12 machine has no packages for (17, 18) are
# tested in a chroot of the Debian release that ships them: Debian 13
# (trixie) for 17, unstable (sid) for 18.  The chroot is made once with
# debootstrap --variant=minbase from the mirror this machine's apt already
# uses (read from /etc/apt at run time: no host name is written here), kept
# under /var/tmp and reused.  Inside it the same scripts run as on a machine
# of that release: test/run-tests.sh --pg N finds PostgreSQL N's own
# packages there.  Each run works in its own mount namespace (unshare), with
# /proc and a tmpfs on /dev/shm mounted for it, so the mounts vanish with the
# run, on every exit path, and two runs never share or unmount each other's.
#
# Source it after common.sh; do not run it.
#
# SERVING_LAYER_CHROOT_BASE overrides the folder the chroots live in.

SL_CHROOT_BASE=${SERVING_LAYER_CHROOT_BASE:-/var/tmp}
# Raised when what ensure_chroot installs changes, so that chroots made
# before get the new packages on their next use.
SL_CHROOT_RECIPE=2
# Installed besides the major's packages: ps for the benchmarks.
SL_CHROOT_EXTRA_PACKAGES=(procps)

# Print the Debian suite that ships PostgreSQL major $1, or fail.
sl_chroot_suite() {
	case "$1" in
	17) echo trixie ;;
	18) echo sid ;;
	*) return 1 ;;
	esac
}

# Print the Debian mirror this machine's apt uses (the first URI that is not
# a security archive), from deb822 .sources files or the one-line format.
sl_host_mirror() {
	local uri
	uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -n 's/^URIs:[[:space:]]*//p' | tr -s ' \t' '\n' |
		grep -E '^(https?|ftp)://' | grep -v -- '-security' | head -n 1)
	if [ -z "$uri" ]; then
		uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}\([^[:space:]]\+\).*/\2/p' |
			grep -E '^(https?|ftp)://' | grep -v -- '-security' | head -n 1)
	fi
	[ -n "$uri" ] || return 1
	printf '%s\n' "$uri"
}

# Run a command inside chroot $1 in a private mount namespace with /proc and
# a tmpfs on /dev/shm; the mounts end with the namespace (and are unmounted
# explicitly first).  The environment is reset to a small known one; extra
# NAME=value words may precede the command after "--env".
sl_chroot_exec() {
	local root=$1
	shift
	local envs=()
	while [ "${1:-}" = "--env" ]; do
		envs+=("$2")
		shift 2
	done
	# shellcheck disable=SC2016  # expanded by the inner shell
	unshare --mount --propagation private -- sh -c '
		root=$1
		shift
		mount -t proc proc "$root/proc" || exit 125
		mkdir -p "$root/dev/shm"
		mount -t tmpfs -o mode=1777,size=512m tmpfs "$root/dev/shm" || exit 125
		status=0
		chroot "$root" "$@" || status=$?
		umount "$root/dev/shm" 2>/dev/null
		umount "$root/proc" 2>/dev/null
		exit "$status"
	' sl-chroot "$root" env -i HOME=/root LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive "${envs[@]}" "$@"
}

# Make (or reuse) the chroot for PostgreSQL major $1 with its packages;
# sets SL_CHROOT.  A chroot is reused when its marker file is there; one
# that a killed run left half made is removed and made again.  A lock keeps
# two runs from making the same chroot at once.
ensure_chroot() {
	local major=$1 suite mirror dir marker p optional=()
	suite=$(sl_chroot_suite "$major") ||
		die "no chroot is known for PostgreSQL $major (known: 17 in trixie, 18 in sid)"
	is_root || die "PostgreSQL $major is tested in a $suite chroot, which needs root"
	dir=$SL_CHROOT_BASE/serving_layer-chroot-$suite
	marker=$dir/etc/serving_layer-chroot-ready
	SL_CHROOT=$dir
	exec 9>"$dir.lock"
	flock 9
	if [ -f "$marker" ] && grep -qx "postgresql-$major" "$marker" &&
		grep -qx "recipe $SL_CHROOT_RECIPE" "$marker"; then
		flock -u 9
		say "reusing the $suite chroot in $dir"
		return 0
	fi
	for p in debootstrap unshare flock; do
		command -v "$p" >/dev/null 2>&1 && continue
		say "installing debootstrap (needed to make the $suite chroot)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get -o DPkg::Lock::Timeout=600 update -q &&
			apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
			debootstrap util-linux </dev/null ||
			die "apt-get install debootstrap failed (see above)"
		break
	done
	if [ ! -x "$dir/usr/bin/apt-get" ] || [ ! -f "$dir/etc/serving_layer-debootstrap-done" ]; then
		mirror=$(sl_host_mirror) ||
			die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
		rm -rf "$dir"
		say "making a Debian $suite chroot in $dir from $mirror (a few minutes, once)"
		debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 || {
			tail -n 30 "$dir.debootstrap.log" >&2
			die "debootstrap $suite failed (log: $dir.debootstrap.log)"
		}
		touch "$dir/etc/serving_layer-debootstrap-done"
	fi
	# apt inside the chroot resolves names with the machine's resolver.
	cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
	# sid's Release file carries a Valid-Until date; a mirror that is a
	# snapshot, or a machine clock ahead of it, makes apt refuse it.  The
	# signatures are still checked: only the expiry is ignored, in this
	# throwaway test chroot alone.
	echo 'Acquire::Check-Valid-Until "false";' >"$dir/etc/apt/apt.conf.d/99serving-layer-test"
	say "installing PostgreSQL $major into the $suite chroot"
	sl_chroot_exec "$dir" apt-get update -q ||
		die "apt-get update failed in the $suite chroot"
	# the packages test/lib/common.sh names for this major
	sl_select_major "$major"
	for p in "${SL_OPTIONAL_PACKAGES[@]}"; do
		if sl_chroot_exec "$dir" apt-cache show "$p" >/dev/null 2>&1; then
			optional+=("$p")
		else
			say "note: $suite has no package $p: the tests that need it will fail or say skipped"
		fi
	done
	sl_chroot_exec "$dir" apt-get install -y -q --no-install-recommends \
		"${SL_PACKAGES[@]}" "${SL_CHROOT_EXTRA_PACKAGES[@]}" "${optional[@]}" </dev/null ||
		die "apt-get install failed in the $suite chroot (see above)"
	sl_chroot_exec "$dir" apt-get clean || true
	{
		echo "recipe $SL_CHROOT_RECIPE"
		echo "postgresql-$major"
		printf '%s\n' "${optional[@]}"
	} >>"$marker"
	flock -u 9
	say "the $suite chroot in $dir is ready"
}

# Make (or reuse) the chroot for major $1 and copy the tree into its /tmp
# (without .git and build products), removed on exit unless
# SERVING_LAYER_KEEP is set; sets SL_CHROOT and SL_CHROOT_COPY (the copy's
# path inside the chroot).
sl_chroot_copy_tree() {
	local major=$1 copy
	(ensure_chroot "$major") || return 1
	SL_CHROOT=$SL_CHROOT_BASE/serving_layer-chroot-$(sl_chroot_suite "$major")
	copy=$(mktemp -d "$SL_CHROOT/tmp/serving_layer.src.XXXXXX") || die "mktemp failed"
	chmod 0755 "$copy"
	if [ -n "${SERVING_LAYER_KEEP:-}" ]; then
		say "SERVING_LAYER_KEEP is set: the copy stays in $copy"
	else
		on_exit "rm -rf '$copy'"
	fi
	tar -C "$SL_ROOT" --exclude=./.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude=./results --exclude=./output_iso \
		--exclude=./tmp_check --exclude=./log --exclude=./test/bench/out \
		-cf - . | tar -C "$copy" -xf -
	SL_CHROOT_COPY=${copy#"$SL_CHROOT"}
}

# Test PostgreSQL major $1 in its chroot: run test/run-tests.sh --pg $1 with
# the suites that follow on a copy of the tree there.  Returns the inner
# run's exit status; that run prints the closing line.
sl_run_in_chroot() {
	local major=$1
	shift
	if ! sl_chroot_copy_tree "$major"; then
		echo "the chroot for PostgreSQL $major could not be made: no test ran"
		echo "0 passed, 1 failed"
		return 1
	fi
	say "testing PostgreSQL $major inside the $(sl_chroot_suite "$major") chroot $SL_CHROOT"
	sl_chroot_exec "$SL_CHROOT" --env SERVING_LAYER_IN_CHROOT=1 \
		--env "COPT=${COPT:-}" --env "CI=${CI:-}" \
		--env "SERVING_LAYER_KEEP=${SERVING_LAYER_KEEP:-}" \
		bash "$SL_CHROOT_COPY/test/run-tests.sh" --pg "$major" "$@" </dev/null
}
