"""A quicker parse of the common tar header, for tarfile to use while unpacking layers.

tarfile's ``TarInfo.frombuf`` reads the thirteen fields of a 512-byte header one by one
through small helpers (``nts``, ``nti``, ``calc_chksums``), about 25 us a header: a
quarter of the Python time spent unpacking a Debian layer of 8700 entries. ``FastTarInfo``
reads them in one ``struct`` call and gives tarfile the very same object.

It only takes headers it can read exactly as tarfile would: every number field plain
octal digits and spaces (no base-256), not an old GNU sparse member, and the unsigned
checksum right. Anything else, valid or not, goes to tarfile's own ``frombuf``, which
parses it or raises its own error. tarfile does everything after the header (pax and GNU
long names, sparse maps, offsets) as always. ``tests/unit/test_tarinfo.py`` checks both
give identical results on real and on damaged headers.
"""

import struct
import tarfile
from zlib import adler32

# name mode uid gid size mtime chksum type linkname magic+version uname gname devmajor
# devminor prefix (then 12 bytes of padding): the ustar layout, which tarfile reads too.
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8x32s32s8s8s155s12x")
_NUMBERS = (1, 2, 3, 4, 5, 6, 11, 12)  # mode uid gid size mtime chksum devmajor devminor
_STRINGS = (0, 8, 9, 10, 13)  # name linkname uname gname prefix
_OCTAL = b"01234567 "


class FastTarInfo(tarfile.TarInfo):
    __slots__ = ()

    @classmethod
    def frombuf(cls, buf, encoding, errors):
        if len(buf) != tarfile.BLOCKSIZE or buf[156:157] == tarfile.GNUTYPE_SPARSE:
            return super().frombuf(buf, encoding, errors)
        fields = _HEADER.unpack(buf)
        numbers = []
        for i in _NUMBERS:
            value = fields[i]
            end = value.find(b"\0")
            if end != -1:
                value = value[:end]
            if value.translate(None, _OCTAL):
                return super().frombuf(buf, encoding, errors)  # base-256, or not a number
            value = value.strip()
            try:
                numbers.append(int(value, 8) if value else 0)
            except ValueError:  # a space inside the digits
                return super().frombuf(buf, encoding, errors)
        mode, uid, gid, size, mtime, chksum, devmajor, devminor = numbers
        # The checksum counts its own field as eight spaces (8 * 32 = 256). The low half of
        # an Adler-32 is 1 + the byte sum mod 65521, exact for 256 bytes (at most 65280): two
        # C calls instead of a Python sum over 512 items.
        total = (adler32(buf[:256]) & 0xFFFF) + (adler32(buf[256:]) & 0xFFFF) - 2
        if chksum != 256 + total - sum(buf[148:156]):
            return super().frombuf(buf, encoding, errors)  # signed-char sum, bad header, zero block
        strings = []
        for i in _STRINGS:
            value = fields[i]
            end = value.find(b"\0")
            if end != -1:
                value = value[:end]
            strings.append(value.decode(encoding, errors))
        name, linkname, uname, gname, prefix = strings
        obj = cls()
        obj.name, obj.mode, obj.uid, obj.gid, obj.size, obj.mtime = name, mode, uid, gid, size, mtime
        obj.chksum, obj.type, obj.linkname, obj.uname, obj.gname = chksum, fields[7], linkname, uname, gname
        obj.devmajor, obj.devminor = devmajor, devminor
        # What tarfile does after the fields: a V7 directory is a file named with a slash;
        # a directory's trailing slashes go; a ustar prefix joins the name.
        if obj.type == tarfile.AREGTYPE and name.endswith("/"):
            obj.type = tarfile.DIRTYPE
        if obj.type == tarfile.DIRTYPE:
            obj.name = obj.name.rstrip("/")
        if prefix and obj.type not in tarfile.GNU_TYPES:
            obj.name = prefix + "/" + obj.name
        return obj


__all__ = ["FastTarInfo"]
