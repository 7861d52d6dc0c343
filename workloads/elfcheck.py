"""Say which OS an x86_64 ELF executable is built for, from its own headers.

FreeBSD's linker leaves EI_OSABI at 0 (SYSV); the kernel brands a binary by its ABI tag note
(PT_NOTE, owner "FreeBSD", type NT_FREEBSD_ABI_TAG = 1, descriptor = __FreeBSD_version) and
its interpreter (/libexec/ld-elf.so.1). Usage: python -m workloads.elfcheck FILE [--expect freebsd]
"""
from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field

PT_INTERP, PT_NOTE = 3, 4
NT_FREEBSD_ABI_TAG = 1


@dataclass
class ElfInfo:
    osabi: int
    machine: int
    interpreter: str | None = None
    notes: list[tuple[str, int, bytes]] = field(default_factory=list)  # (owner, type, descriptor)

    @property
    def freebsd_version(self) -> int | None:
        for owner, ntype, desc in self.notes:
            if owner == "FreeBSD" and ntype == NT_FREEBSD_ABI_TAG and len(desc) == 4:
                return struct.unpack("<I", desc)[0]
        return None


def read_elf(path: str) -> ElfInfo:
    """Parse the ELF64 little-endian header, PT_INTERP and PT_NOTE segments."""
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
    (e_machine,) = struct.unpack_from("<H", data, 18)
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    info = ElfInfo(osabi=data[7], machine=e_machine)
    for i in range(e_phnum):
        p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from("<IIQQQQ", data, e_phoff + i * e_phentsize)
        seg = data[p_offset:p_offset + p_filesz]
        if p_type == PT_INTERP:
            info.interpreter = seg.rstrip(b"\0").decode()
        elif p_type == PT_NOTE:
            off = 0
            while off + 12 <= len(seg):
                namesz, descsz, ntype = struct.unpack_from("<III", seg, off)
                off += 12
                name = seg[off:off + namesz].rstrip(b"\0").decode(errors="replace")
                off += (namesz + 3) & ~3
                desc = seg[off:off + descsz]
                off += (descsz + 3) & ~3
                info.notes.append((name, ntype, desc))
    return info


def main(argv: list[str]) -> int:
    path = argv[0]
    info = read_elf(path)
    version = info.freebsd_version
    is_freebsd = version is not None and info.interpreter == "/libexec/ld-elf.so.1" and info.machine == 62
    print(f"{path}: machine={info.machine} interpreter={info.interpreter} "
          f"freebsd_abi_tag={version if version is not None else '-'}")
    if "--expect" in argv and argv[argv.index("--expect") + 1] == "freebsd" and not is_freebsd:
        print(f"{path}: not an x86_64 FreeBSD executable", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
