#!/usr/bin/env python3
"""Writes filesystem images into LVs at the PV extents `lvs --segments` reports, since there is no
device-mapper to do it. Striped LVs are interleaved by stripe_size, raid1 and mirror images each get a full copy,
raid5 images get the left-symmetric layout (parity of row r on image (n-1) - r mod n).

Usage: lvm-place.py lvs.json pvs.json LOOP=IMAGE:OFFSET... LV=FSIMAGE..."""
import json
import sys

lvs = json.load(open(sys.argv[1]))['report'][0]['seg']
pvs = {p['pv_name']: int(p['pe_start']) for p in json.load(open(sys.argv[2]))['report'][0]['pv']}
devs, fss = {}, {}
for arg in sys.argv[3:]:
    k, v = arg.split('=', 1)
    if ':' in v:
        img, off = v.rsplit(':', 1)
        devs[k] = (img, int(off))
    else:
        fss[k] = open(v, 'rb').read()
ext = int(lvs[0]['vg_extent_size'])
segs = {}
for s in lvs:
    segs.setdefault(s['lv_name'].strip('[]'), []).append(s)


def write_pe(dev, pe, data):
    img, off = devs[dev]
    with open(img, 'r+b') as f:
        f.seek(off + pvs[dev] + pe * ext)
        f.write(data)


def write_lv(name, data):
    """Writes data to an LV made of linear or striped segments."""
    for s in segs[name]:
        start, size = int(s['seg_start_pe']) * ext, int(s['seg_size_pe']) * ext
        chunk = data[start:start + size]
        ranges = []
        for r in s['seg_pe_ranges'].split():
            dev, span = r.rsplit(':', 1)
            ranges.append((dev, int(span.split('-')[0])))
        if s['segtype'] == 'linear':
            write_pe(ranges[0][0], ranges[0][1], chunk)
            continue
        assert s['segtype'] == 'striped', s['segtype']
        n, ss = len(ranges), int(s['stripe_size'])
        cols = [bytearray() for _ in range(n)]
        for k in range(0, len(chunk), ss):
            cols[(k // ss) % n] += chunk[k:k + ss]
        for (dev, pe), col in zip(ranges, cols):
            write_pe(dev, pe, bytes(col))


for name, data in fss.items():
    seg = segs[name][0]
    if seg['segtype'] in ('linear', 'striped'):
        write_lv(name, data)
    elif seg['segtype'] in ('raid1', 'mirror'):
        for img in [k for k in segs if k.startswith(name + '_rimage_') or k.startswith(name + '_mimage_')]:
            write_lv(img, data)
    elif seg['segtype'] == 'raid5':
        imgs = sorted(k for k in segs if k.startswith(name + '_rimage_'))
        n, ss = len(imgs), int(seg['stripe_size'])
        out = [bytearray() for _ in range(n)]
        chunks = [data[k:k + ss] for k in range(0, len(data), ss)]
        for row in range(len(chunks) // (n - 1)):
            parity = (n - 1) - row % n
            p = bytearray(ss)
            members = [None] * n
            for k in range(n - 1):
                c = chunks[row * (n - 1) + k]
                members[(parity + 1 + k) % n] = c
                p = bytearray(a ^ b for a, b in zip(p, c))
            members[parity] = bytes(p)
            for i in range(n):
                out[i] += members[i]
        for img, b in zip(imgs, out):
            write_lv(img, bytes(b))
    else:
        raise SystemExit('cannot place %s (%s)' % (name, seg['segtype']))
