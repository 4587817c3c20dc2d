// Package ldm reads Windows Logical Disk Manager (dynamic disk) metadata — PRIVHEAD, TOCBLOCK, VMDB
// and the VBLK database — from MBR and GPT disks, and assembles the volumes of each disk group:
// simple, spanned, striped, mirrored and RAID-5 (rebuilt from parity when one member is missing).
// All LDM integers are big-endian.
package ldm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// ErrNoPrivhead means there is no PRIVHEAD where one was expected.
var ErrNoPrivhead = errors.New("no LDM PRIVHEAD")

const sector = 512

// maxConfig bounds the config area we read; Windows uses 1 MiB.
const maxConfig = 16 << 20

// Disk is one dynamic disk: its PRIVHEAD and its copy of the group database.
type Disk struct {
	DiskGUID    string
	GroupGUID   string
	GroupName   string
	DataStart   uint64 // sectors from the disk start where partitions are counted from
	DataSize    uint64
	ConfigStart uint64
	ConfigSize  uint64
	DB          *DB
	dev         layout.Dev
}

// Dev is the whole disk the metadata was read from.
func (d *Disk) Dev() layout.Dev { return d.dev }

func text(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// ReadDisk reads the PRIVHEAD at byte privhead of the whole disk dev (sector 6 on an MBR disk, the
// last sector of the "LDM metadata" partition on a GPT disk), then the database it points to.
func ReadDisk(dev layout.Dev, privhead int64) (*Disk, error) {
	h := make([]byte, sector)
	if n, _ := dev.ReadAt(h, privhead); n != sector {
		return nil, fmt.Errorf("PRIVHEAD at %d unreadable", privhead)
	}
	if string(h[:8]) != "PRIVHEAD" {
		return nil, fmt.Errorf("%w at byte %d", ErrNoPrivhead, privhead)
	}
	d := &Disk{
		DiskGUID:    text(h[0x30:0x70]),
		GroupGUID:   text(h[0xB0:0xF0]),
		GroupName:   text(h[0xF0:0x110]),
		DataStart:   binary.BigEndian.Uint64(h[0x11B:]),
		DataSize:    binary.BigEndian.Uint64(h[0x123:]),
		ConfigStart: binary.BigEndian.Uint64(h[0x12B:]),
		ConfigSize:  binary.BigEndian.Uint64(h[0x133:]),
		dev:         dev,
	}
	disk := uint64(dev.Size()) / sector
	if d.ConfigStart >= disk || d.ConfigSize > disk-d.ConfigStart || d.ConfigSize*sector > maxConfig || d.ConfigSize < 4 {
		return nil, fmt.Errorf("PRIVHEAD: config area %d+%d sectors does not fit the %d-sector disk", d.ConfigStart, d.ConfigSize, disk)
	}
	if d.DataStart >= disk || d.DataSize > disk-d.DataStart {
		return nil, fmt.Errorf("PRIVHEAD: data area %d+%d sectors does not fit the %d-sector disk", d.DataStart, d.DataSize, disk)
	}
	config := make([]byte, d.ConfigSize*sector)
	if n, _ := dev.ReadAt(config, int64(d.ConfigStart)*sector); n != len(config) {
		return nil, errors.New("LDM config area unreadable")
	}
	db, err := ParseConfig(config)
	if err != nil {
		return nil, err
	}
	d.DB = db
	return d, nil
}

// ParseConfig parses a config area: the TOCBLOCK two sectors in points at the VMDB, which heads the
// VBLK records.
func ParseConfig(config []byte) (*DB, error) {
	if len(config) < 3*sector {
		return nil, errors.New("config area too small")
	}
	toc := config[2*sector : 3*sector]
	if string(toc[:8]) != "TOCBLOCK" {
		return nil, errors.New("no TOCBLOCK at config sector 2")
	}
	var vmdbAt uint64
	found := false
	for i := 0; i < 2; i++ {
		b := toc[0x24+0x22*i:]
		if text(b[:8]) == "config" {
			vmdbAt, found = binary.BigEndian.Uint64(b[0x0A:]), true
			break
		}
	}
	if !found {
		return nil, errors.New("TOCBLOCK has no config bitmap")
	}
	if vmdbAt >= uint64(len(config))/sector {
		return nil, fmt.Errorf("VMDB at sector %d lies outside the %d-byte config area", vmdbAt, len(config))
	}
	return ParseVMDB(config[vmdbAt*sector:])
}
