//! The runtime probe: a one-file container image whose only program makes
//! a single syscall (`exit_group(0)`). Started a number of times under the
//! mining filter, it shows what the container runtime itself does after it
//! installs the seccomp filter (the runtime's post-filter syscalls), with
//! nothing of an image's own mixed in. Those calls vary between starts (Go's
//! runtime in runc wakes threads and handles signals when it must), so the
//! union over many starts is the runtime's must-allow base.
//!
//! The image is built here, with no compiler and no registry: a minimal
//! static ELF written byte by byte, in a ustar archive for `docker import`.

/// A static x86_64 ELF executable: `exit_group(0)`.
pub fn exit_elf_x86_64() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const EHDR: u64 = 64;
    const PHDR: u64 = 56;
    // mov edi, 0; mov eax, 231 (exit_group); syscall
    let code: [u8; 12] = [0xbf, 0, 0, 0, 0, 0xb8, 231, 0, 0, 0, 0x0f, 0x05];
    let entry = BASE + EHDR + PHDR;
    let total = EHDR + PHDR + code.len() as u64;
    let mut b = Vec::with_capacity(total as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI.
    b.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    b.extend_from_slice(&62u16.to_le_bytes()); // e_machine: x86_64
    b.extend_from_slice(&1u32.to_le_bytes()); // e_version
    b.extend_from_slice(&entry.to_le_bytes()); // e_entry
    b.extend_from_slice(&EHDR.to_le_bytes()); // e_phoff
    b.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    b.extend_from_slice(&(EHDR as u16).to_le_bytes()); // e_ehsize
    b.extend_from_slice(&(PHDR as u16).to_le_bytes()); // e_phentsize
    b.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    b.extend_from_slice(&0u16.to_le_bytes()); // e_shentsize
    b.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    b.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
                                              // Program header: one PT_LOAD, read + execute, the whole file.
    b.extend_from_slice(&1u32.to_le_bytes()); // p_type: LOAD
    b.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R+X
    b.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    b.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    b.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    b.extend_from_slice(&total.to_le_bytes()); // p_filesz
    b.extend_from_slice(&total.to_le_bytes()); // p_memsz
    b.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    b.extend_from_slice(&code);
    b
}

/// A ustar archive holding one regular file at the root.
pub fn tar_one_file(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], off: usize, s: &[u8]| h[off..off + s.len()].copy_from_slice(s);
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, format!("{mode:07o}\0").as_bytes());
    put(&mut h, 108, b"0000000\0"); // uid
    put(&mut h, 116, b"0000000\0"); // gid
    put(&mut h, 124, format!("{:011o}\0", data.len()).as_bytes());
    put(&mut h, 136, b"00000000000\0"); // mtime: fixed, for a stable image
    put(&mut h, 156, b"0"); // typeflag: regular file
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    // The checksum is computed with its own field read as spaces.
    put(&mut h, 148, b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The probe image's archive: `/probe`, mode 0755.
pub fn probe_image_tar() -> Vec<u8> {
    tar_one_file("probe", 0o755, &exit_elf_x86_64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_elf_runs_and_exits_zero() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("probe");
        std::fs::write(&p, exit_elf_x86_64()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let st = std::process::Command::new(&p).status().unwrap();
        assert_eq!(st.code(), Some(0));
    }

    #[test]
    fn tar_lists_and_extracts_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("p.tar");
        std::fs::write(&t, probe_image_tar()).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&t)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.starts_with("-rwxr-xr-x"), "{listing}");
        assert!(listing.trim_end().ends_with(" probe"), "{listing}");
    }
}
