"""Writes the body of an mkfs.xfs protofile for the tree in the current directory (used by make.sh)."""
import os
import stat
import sys


def mode_string(st):
    m = st.st_mode
    kind = {stat.S_IFREG: "-", stat.S_IFDIR: "d", stat.S_IFLNK: "l", stat.S_IFCHR: "c",
            stat.S_IFBLK: "b", stat.S_IFIFO: "p"}[stat.S_IFMT(m)]
    return "%s%s%s%03o" % (kind, "u" if m & stat.S_ISUID else "-", "g" if m & stat.S_ISGID else "-", m & 0o777)


def emit(path, depth):
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        st = os.lstat(full)
        head = "%s%s %s %d %d" % (" " * depth, name, mode_string(st), st.st_uid, st.st_gid)
        if stat.S_ISREG(st.st_mode):
            print(head, os.path.abspath(full))
        elif stat.S_ISLNK(st.st_mode):
            print(head, os.readlink(full))
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            print(head, os.major(st.st_rdev), os.minor(st.st_rdev))
        elif stat.S_ISDIR(st.st_mode):
            print(head)
            emit(full, depth + 1)
            print(" " * (depth + 1) + "$")
        else:
            print(head)


emit(".", 1)
sys.stdout.flush()
