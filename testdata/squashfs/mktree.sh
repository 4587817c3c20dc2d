#!/bin/bash
# mktree.sh DIR: build the source tree the squashfs and ISO9660 fixtures are made from.
# Every file type, sparse and zero-filled files, long and Unicode names, deep nesting, hard links,
# odd owners and modes, xattrs, and a directory with a few thousand entries. Must run as root (mknod, chown).
set -euo pipefail
d=$1
mkdir -p "$d"
cd "$d"

# Regular files: empty, small, exactly one 128 KiB block, multi-block with a tail, incompressible.
: > empty
printf 'hello, squashfs\n' > hello.txt
head -c 131072 < <(yes 'block aligned line of text.') > one-block
head -c 400000 < <(yes 'multi block file with a fragment tail') > multi-block
python3 -c "import random,sys; random.seed(9660); sys.stdout.buffer.write(random.randbytes(4000))" > random.bin

# Sparse and zero-filled: holes and zero blocks that mksquashfs stores as sparse.
truncate -s 3M sparse
printf 'middle' | dd of=sparse bs=1 seek=1500000 conv=notrunc status=none
printf 'end' | dd of=sparse bs=1 seek=$((3*1024*1024-3)) conv=notrunc status=none
head -c 600000 /dev/zero > zeros

# Names: the longest allowed, Unicode, spaces and odd punctuation.
long=$(printf 'L%.0s' $(seq 1 250))
echo long > "${long}.txt"
echo unicode > 'Grüße-日本語-🙂.txt'
mkdir 'dir with spaces'
echo 'quoted' > "dir with spaces/it's \"odd\" #1.txt"

# Deep nesting.
p=deep
for i in $(seq 1 30); do p="$p/level$i"; done
mkdir -p "$p"
echo bottom > "$p/bottom.txt"

# Hard links (three names for one inode, across directories).
mkdir links
echo shared > links/a
ln links/a links/b
ln links/a hardlink-top

# Symlinks: relative, absolute, to a directory, dangling, long target, chain.
ln -s hello.txt rel-link
ln -s /hello.txt abs-link
ln -s deep/level1 dir-link
ln -s nowhere/missing dangling
ln -s "$(printf 'x/%.0s' $(seq 1 150))end" long-target
ln -s rel-link chain-link

# Special files: devices (one with a large major/minor), fifo, socket.
mkdir dev
mknod dev/null c 1 3
mknod dev/sda1 b 8 1
mknod dev/big c 300 70000
mkfifo dev/fifo
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' dev/socket

# Modes and owners.
mkdir modes
echo suid > modes/setuid; chmod 4755 modes/setuid
echo sgid > modes/setgid; chmod 2710 modes/setgid
mkdir modes/sticky; chmod 1777 modes/sticky
echo none > modes/no-perms; chmod 000 modes/no-perms
echo user > modes/owned; chown 1000:1000 modes/owned
echo big > modes/big-ids; chown 123456:654321 modes/big-ids
echo nobody > modes/nobody; chown 65534:65534 modes/nobody; chmod 640 modes/nobody
mkdir modes/owned-dir; chown 4242:4343 modes/owned-dir; chmod 750 modes/owned-dir

# Extended attributes, a shared long value (stored out of line once it repeats) and security.*.
mkdir xattrs
val=$(printf 'v%.0s' $(seq 1 300))
for i in 1 2 3; do
	echo "x$i" > xattrs/file$i
	setfattr -n user.shared -v "$val" xattrs/file$i
	setfattr -n user.index -v "$i" xattrs/file$i
done
setfattr -n trusted.secret -v hidden xattrs/file1
setfattr -n security.label -v 'system_u:object_r:etc_t' xattrs/file2
setfattr -n user.on-dir -v yes xattrs
ln -s file1 xattrs/link

# A directory with a few thousand entries.
mkdir many
for i in $(seq -w 1 3000); do : > "many/entry-$i"; done
echo data > many/entry-1500

# Fixed times so the images are stable.
find . -depth -exec touch -h -d '2021-06-15 12:34:56.123456789 UTC' {} +
touch -h -d '1999-12-31 23:59:59 UTC' hello.txt
touch -h -d '2038-01-19 03:14:08 UTC' modes/owned
