#!/usr/bin/env python3
"""Adds raid1, raid5, legacy mirror and thin LVs to a vgcfgbackup file (lvcreate refuses them without device-mapper).

Usage: lvm-extra.py in.txt out.txt. Extents are chosen to be free in the layout make.sh builds."""
import random
import string
import sys

rng = random.Random(42)


def lvid():
    a = ''.join(rng.choice(string.ascii_letters + string.digits) for _ in range(32))
    return '-'.join([a[0:6], a[6:10], a[10:14], a[14:18], a[18:22], a[22:26], a[26:32]])


def lv(name, status, segs):
    out = '\t\t%s {\n\t\t\tid = "%s"\n\t\t\tstatus = [%s]\n\t\t\tflags = []\n\t\t\tsegment_count = %d\n' % (
        name, lvid(), ', '.join('"%s"' % s for s in status), len(segs))
    for i, seg in enumerate(segs):
        out += '\t\t\tsegment%d {\n' % (i + 1)
        out += ''.join('\t\t\t\t%s = %s\n' % kv for kv in seg)
        out += '\t\t\t}\n'
    return out + '\t\t}\n'


def linear(count, pv, pe):
    return [[('start_extent', 0), ('extent_count', count), ('type', '"striped"'), ('stripe_count', 1),
             ('stripes', '["%s", %d]' % (pv, pe))]]


RW = ['READ', 'WRITE']
VIS = RW + ['VISIBLE']
text = lv('r1', VIS, [[('start_extent', 0), ('extent_count', 4), ('type', '"raid1"'), ('device_count', 2),
                      ('region_size', 1024),
                      ('raids', '["r1_rmeta_0", "r1_rimage_0", "r1_rmeta_1", "r1_rimage_1"]')]])
text += lv('r1_rmeta_0', RW, linear(1, 'pv1', 6)) + lv('r1_rimage_0', RW, linear(4, 'pv1', 7))
text += lv('r1_rmeta_1', RW, linear(1, 'pv2', 2)) + lv('r1_rimage_1', RW, linear(4, 'pv2', 3))
text += lv('r5', VIS, [[('start_extent', 0), ('extent_count', 4), ('type', '"raid5"'), ('device_count', 3),
                       ('region_size', 1024), ('stripe_size', 128),
                       ('raids', '["r5_rmeta_0", "r5_rimage_0", "r5_rmeta_1", "r5_rimage_1", "r5_rmeta_2", "r5_rimage_2"]')]])
for i, (pv, pe) in enumerate([('pv0', 16), ('pv1', 11), ('pv2', 7)]):
    text += lv('r5_rmeta_%d' % i, RW, linear(1, pv, pe)) + lv('r5_rimage_%d' % i, RW, linear(2, pv, pe + 1))
text += lv('tpool', VIS, [[('start_extent', 0), ('extent_count', 4), ('type', '"thin-pool"'),
                          ('metadata', '"tpool_tmeta"'), ('pool', '"tpool_tdata"'), ('transaction_id', 1),
                          ('chunk_size', 128), ('discards', '"passdown"'), ('zero_new_blocks', 1)]])
text += lv('thin1', VIS, [[('start_extent', 0), ('extent_count', 4), ('type', '"thin"'), ('thin_pool', '"tpool"'),
                          ('transaction_id', 0), ('device_id', 1)]])
text += lv('mir', VIS, [[('start_extent', 0), ('extent_count', 2), ('type', '"mirror"'), ('mirror_count', 2),
                        ('mirror_log', '"mir_mlog"'), ('region_size', 1024),
                        ('mirrors', '["mir_mimage_0", 0, "mir_mimage_1", 0]')]])
text += lv('mir_mimage_0', RW, linear(2, 'pv0', 19)) + lv('mir_mimage_1', RW, linear(2, 'pv1', 14))
text += lv('mir_mlog', RW, linear(1, 'pv2', 16))
text += lv('tpool_tmeta', RW, linear(1, 'pv2', 10)) + lv('tpool_tdata', RW, linear(4, 'pv2', 11))
text += lv('lvol0_pmspare', RW, linear(1, 'pv2', 15))

src = open(sys.argv[1]).read()
end = src.rindex('\t}\n\n}')
open(sys.argv[2], 'w').write(src[:end] + text + src[end:])
