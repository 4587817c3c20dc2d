// Package longtest holds only a test: with -long (and root), it generates a large source tree, builds
// an ext4, XFS, squashfs, NTFS, exFAT, FAT32 and ISO 9660 image of it with the real tools, and compares
// each of our readers with an independent reader of the same image. The committed fixtures of each
// reader stay small; this comparison covers the scale they cannot.
//
//	go test ./volumes/fsys/longtest -long -v -timeout 60m
package longtest
