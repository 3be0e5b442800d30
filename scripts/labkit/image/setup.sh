#!/bin/sh
# Runs once inside the freshly debootstrapped tree (chroot) to make it a container image whose
# PID 1 is systemd. Changing this file changes the image tag, so the next `lab up` rebuilds.
set -eu

# --- systemd in a container: mask what needs a real machine ---------------------------------
# No consoles, no udev (podman populates /dev), no root filesystem to remount, no kernel modules
# to load, no hardware clocks or swap. Timers that would run apt or fstrim at random moments in
# the middle of a test go too.
systemctl mask \
    getty.target console-getty.service getty@tty1.service serial-getty@.service \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service \
    systemd-remount-fs.service systemd-modules-load.service kmod-static-nodes.service \
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
    systemd-hwdb-update.service systemd-firstboot.service systemd-pstore.service \
    systemd-timesyncd.service e2scrub_reap.service \
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer
systemctl set-default multi-user.target

# Each container gets its own machine id: with an empty /etc/machine-id systemd makes one at boot
# (from podman's container id). A baked-in id would make every host the same to journald/dbus.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id

# --- services: installed, off until a role turns them on ---------------------------------------
# Debian enables a daemon when its package is installed; in the image that would start bind9,
# postgresql, keepalived, conntrackd and Open vSwitch on every lab host, each host paying for
# services it does not run, and hiding a role that forgets to enable its service. The roles enable
# what a host runs; switch containers start OVS with `/sbin/init systemd.wants=openvswitch-switch.service`.
systemctl disable named.service keepalived.service conntrackd.service postgresql.service \
    openvswitch-switch.service uuidd.socket
rm -f /etc/systemd/system/bind9.service  # alias link left by disable's bookkeeping, if any

# --- sshd: root by key only, fresh host keys per container -------------------------------------
mkdir -p /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/twinsite-lab.conf <<'CONF'
# twinsite lab: Ansible logs in as root with the lab key (mounted at /root/.ssh/authorized_keys).
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF
install -d -m 0700 /root/.ssh
# Host keys made at debootstrap time would be shared by every container; make them at first boot.
rm -f /etc/ssh/ssh_host_*
mkdir -p /etc/systemd/system/ssh.service.d
cat > /etc/systemd/system/ssh.service.d/twinsite-lab.conf <<'CONF'
[Service]
# Generate missing host keys before Debian's config test (`sshd -t` fails without them).
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
CONF

# --- Open vSwitch: userspace datapath, no kernel module ----------------------------------------
# The lab's switches use datapath_type=netdev, which needs no kernel module, but ovs-ctl still
# runs `modprobe openvswitch` on a kernel with module support and gives up when that fails (it
# always does in a container). A modprobe that succeeds, first on ovs-vswitchd's PATH only, lets
# the stock Debian units start unchanged. On a kernel without module support (/proc/modules
# absent) ovs-ctl skips modprobe by itself.
install -d /usr/local/lib/twinsite/ovs-nokmod
cat > /usr/local/lib/twinsite/ovs-nokmod/modprobe <<'SH'
#!/bin/sh
# twinsite lab: OVS here uses only the userspace (netdev) datapath; no module to load.
exit 0
SH
chmod 0755 /usr/local/lib/twinsite/ovs-nokmod/modprobe
mkdir -p /etc/systemd/system/ovs-vswitchd.service.d
cat > /etc/systemd/system/ovs-vswitchd.service.d/twinsite-lab.conf <<'CONF'
[Service]
Environment=PATH=/usr/local/lib/twinsite/ovs-nokmod:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CONF
# --no-mlockall: ovs-vswitchd would otherwise pin all its memory, a waste for a lab switch.
sed -i 's/^# *OVS_CTL_OPTS=.*/OVS_CTL_OPTS="--no-mlockall"/' /etc/default/openvswitch-switch
grep -q '^OVS_CTL_OPTS="--no-mlockall"' /etc/default/openvswitch-switch

# --- size: caches and docs nobody reads in a lab container -------------------------------------
# (The package lists go too: the lab hosts have no route to a mirror, and dpkg's status is kept.)
rm -rf /var/cache/apt/archives/*.deb /var/cache/apt/*.bin /var/lib/apt/lists/* \
    /usr/share/doc/* /usr/share/man/* /usr/share/info/* /var/log/*.log /debootstrap
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
