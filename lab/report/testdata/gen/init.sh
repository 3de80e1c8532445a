#!/bin/sh
# PID 1 of the test-data guest: provoke the crash named by rl.case= on the kernel
# command line, then power off (fatal cases never get there).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for w in $(cat /proc/cmdline); do
	case $w in
	rl.case=*) CASES=${w#rl.case=} ;;
	rl.cpu=*) CPU=${w#rl.cpu=} ;;
	rl.secs=*) SECS=${w#rl.secs=} ;;
	esac
done
echo "INIT: cases=$CASES cpu=${CPU:-any}"
insmod /rlcrash.ko seconds=${SECS:-8} || echo "INIT: insmod failed"
echo 9 > /proc/sys/kernel/printk
run() { # one step, pinned to rl.cpu when given
	if [ -n "$CPU" ]; then taskset -c "$CPU" sh -c "$1"; else sh -c "$1"; fi
}
for c in $(echo "$CASES" | tr , ' '); do
	echo "INIT: case $c"
	case $c in
	sysrq-*) run "echo ${c#sysrq-} > /proc/sysrq-trigger" ;;
	softlockup) echo 1 > /proc/sys/kernel/watchdog_thresh; run "echo softlockup > /proc/rlcrash" ;;
	hardlockup) echo 1 > /proc/sys/kernel/watchdog_thresh; run "echo hardlockup > /proc/rlcrash" ;;
	rcustall)
		echo 0 > /proc/sys/kernel/soft_watchdog
		echo 3 > /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout
		run "echo rcustall > /proc/rlcrash" ;;
	hung) echo 2 > /proc/sys/kernel/hung_task_timeout_secs; run "echo hung > /proc/rlcrash" ;;
	panic_on_warn) echo 1 > /proc/sys/kernel/panic_on_warn ;;
	panic_on_oops) echo 1 > /proc/sys/kernel/panic_on_oops ;;
	sleep*) sleep ${c#sleep} ;;
	leak) # kmemleak reports objects older than 5 s (kmemleak.verbose=1 prints them)
		run "echo leak > /proc/rlcrash"
		# new tasks reuse (and clear) a cached stack the leaking task may have left a
		# copy of the pointer on
		for i in 1 2 3 4 5 6; do sh -c true; done
		sleep 6
		mount -t debugfs none /sys/kernel/debug
		# an object is reported once it is found unreferenced with its checksum unchanged
		# since the scan before: two scans, plus one in case a stale copy still pointed
		# at it in the first
		for i in 1 2 3; do echo scan > /sys/kernel/debug/kmemleak; done ;;
	leakcat) # what syzkaller's executor does: a "BUG: memory leak" line, then the leaks
		l=$(cat /sys/kernel/debug/kmemleak) # debugfs files have no size: read it
		[ -n "$l" ] && { echo "BUG: memory leak"; echo "$l"; } ;;
	kfence-*) # sample every allocation from now on (debug-cases.sh boots with 100 ms, so
		# boot does not fill KFENCE's 255 objects before the trigger runs)
		echo 1 > /sys/module/kfence/parameters/sample_interval
		run "echo $c > /proc/rlcrash" ;;
	kcsanwide) # longer, denser watchpoints from here on (at boot they slow TCG past the timeout)
		echo 1000 > /sys/module/kcsan/parameters/udelay_task
		echo 400 > /sys/module/kcsan/parameters/skip_watch ;;
	kcsanstats) # KCSAN's counters (watchpoints set up, races found)
		mount -t debugfs none /sys/kernel/debug 2>/dev/null; cat /sys/kernel/debug/kcsan ;;
	netdev) run "echo netdev > /proc/rlcrash" ;;
	userwarn) # user space writing report-like lines to the console: not kernel reports
		echo "WARNING: user space says this, not the kernel"
		echo "BUG: unable to handle kernel NULL pointer dereference (quoted by a user-space tool)"
		echo "Kernel panic - not syncing: (echoed by a script)" ;;
	par-*) # the same trigger on both CPUs at once: reports from two CPUs interleave
		taskset -c 0 sh -c "echo ${c#par-} > /proc/rlcrash" &
		taskset -c 1 sh -c "echo ${c#par-} > /proc/rlcrash" &
		wait ;;
	*) run "echo $c > /proc/rlcrash" ;;
	esac
	echo "INIT: case $c returned $?"
	sleep 1
done
echo "INIT: done"
# ACPI power-off where the kernel has it; otherwise a reboot, which QEMU's -no-reboot
# turns into an exit as well.
[ -d /sys/firmware/acpi ] && poweroff -f
reboot -f
