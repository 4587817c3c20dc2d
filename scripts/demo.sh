#!/usr/bin/env bash
# Builds vmdkmount, mounts the bundled sample disks in a temporary folder, shows what is inside, unmounts.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v tree >/dev/null || need+=(tree)
if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
go build -o bin/ ./cmd/...
disks="testdata/sample/sample-gpt.vmdk testdata/sample/sample-mbr.vmdk"
mnt=$(mktemp -d)
trap 'bin/vmdkmount umount "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT
echo "\$ vmdkmount list $disks"
bin/vmdkmount list $disks
echo
echo "\$ vmdkmount $disks $mnt"
bin/vmdkmount $disks "$mnt"
echo "\$ tree $mnt"
(cd "$mnt" && tree -a --noreport .)
echo "\$ cat $mnt/d0p2/home/alice/Documents/readme.txt $mnt/d0p1/hello.txt"
cat "$mnt/d0p2/home/alice/Documents/readme.txt" "$mnt/d0p1/hello.txt"
echo "\$ vmdkmount umount $mnt"
