//! perf's names for the modules' code inside policy-server. policy-server compiles a module
//! to the very machine code this process does (the same wasmtime, with the same settings,
//! see [`crate::host`]), but writes no perf map. So the map wasmtime writes here
//! (`KWHOST_PERFMAP`), shifted to where the same code lies in policy-server's memory, names
//! the samples `perf record` takes there: the policy profiled where it runs.
//!
//! A region of compiled code is matched only when it is the same byte for byte, so a
//! module compiled differently gets no names rather than wrong ones.
//!
//! Linux only (`/proc`); reading policy-server's memory takes the right to trace it, which
//! its parent, or root, has.

use std::io::{Read, Seek, SeekFrom};

use anyhow::{Context, Result};

/// Whether the engine writes wasmtime's perf map (`KWHOST_PERFMAP` set), which names the
/// modules' code for perf here, and through [`share_with`] inside policy-server.
pub fn enabled() -> bool {
    std::env::var_os("KWHOST_PERFMAP").is_some()
}

/// One function of wasmtime's perf map: its address, its size, its name.
struct Symbol {
    address: u64,
    size: u64,
    name: String,
}

/// An executable anonymous mapping: where JIT-compiled code lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    start: u64,
    end: u64,
}

/// This process's regions of compiled code now: compare before and after compiling a
/// module to know the module's own.
pub fn own_code() -> Result<Vec<Region>> {
    code_regions(std::process::id())
}

/// What [`share_with`] wrote.
pub struct Shared {
    pub path: String,
    pub symbols: usize,
    pub regions: usize,
}

/// Writes `/tmp/perf-<pid>.map` for process `pid` from this process's own perf map: each
/// module's regions of compiled code (named, with the regions [`own_code`] found new when
/// it was compiled) that lie in `pid`'s memory too, byte for byte, have their functions
/// named there, as `MODULE: FUNCTION` (the modules share function names: `memcpy`).
pub fn share_with(pid: u32, modules: &[(&str, &[Region])]) -> Result<Shared> {
    let symbols = read_map(&format!("/tmp/perf-{}.map", std::process::id()))?;
    let theirs: Vec<(Region, Vec<u8>)> = code_regions(pid)?
        .into_iter()
        .filter_map(|r| Some((r, read_memory(pid, r).ok()?)))
        .collect();
    let mut out = String::new();
    let (mut named, mut regions) = (0, 0);
    for &(module, own) in modules {
        for &mine in own {
            let code = read_memory(std::process::id(), mine)?;
            let within = symbols
                .iter()
                .filter(|s| s.address >= mine.start && s.address < mine.end);
            for (region, _) in theirs.iter().filter(|(_, bytes)| *bytes == code) {
                regions += 1;
                for s in within.clone() {
                    let address = s.address - mine.start + region.start;
                    out.push_str(&format!("{address:x} {:x} {module}: {}\n", s.size, s.name));
                    named += 1;
                }
            }
        }
    }
    let path = format!("/tmp/perf-{pid}.map");
    std::fs::write(&path, out).with_context(|| format!("cannot write {path}"))?;
    Ok(Shared {
        path,
        symbols: named,
        regions,
    })
}

/// wasmtime's perf map: `ADDRESS SIZE NAME` a line, in hex (wasmtime writes the address
/// with `0x`, perf reads either).
fn read_map(path: &str) -> Result<Vec<Symbol>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {path} (is KWHOST_PERFMAP set?)"))?;
    let hex = |field: &str| u64::from_str_radix(field.trim_start_matches("0x"), 16).ok();
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ' ');
            let address = hex(fields.next()?)?;
            let size = hex(fields.next()?)?;
            let name = fields.next()?.to_string();
            Some(Symbol {
                address,
                size,
                name,
            })
        })
        .collect())
}

/// The executable mappings of `pid` that no file backs.
fn code_regions(pid: u32) -> Result<Vec<Region>> {
    let path = format!("/proc/{pid}/maps");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    Ok(anonymous_code(&text))
}

/// The executable mappings no file backs, in the text of a `/proc/PID/maps`.
fn anonymous_code(maps: &str) -> Vec<Region> {
    maps.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (range, perms) = (fields.first()?, fields.get(1)?);
            // A sixth field names the file (or [vdso], [stack]) behind the mapping.
            if !perms.contains('x') || fields.len() > 5 {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Region {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
            })
        })
        .collect()
}

/// The bytes of `region` in `pid`'s memory.
fn read_memory(pid: u32, region: Region) -> Result<Vec<u8>> {
    let path = format!("/proc/{pid}/mem");
    let mut file = std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
    file.seek(SeekFrom::Start(region.start))?;
    let mut bytes = vec![0; (region.end - region.start) as usize];
    file.read_exact(&mut bytes)
        .with_context(|| format!("cannot read {path} at {:x}", region.start))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perf_map_line_is_a_hex_address_a_size_and_a_name_with_spaces() {
        let path = std::env::temp_dir().join(format!("perf-map-test-{}.map", std::process::id()));
        std::fs::write(
            &path,
            "0x7f00 1a0 <&mut serde_json::de::Deserializer<R> as Deserializer>::deserialize_any\n\
             not a line\n7f00 8 unprefixed\n",
        )
        .unwrap();
        let symbols = read_map(path.to_str().unwrap()).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(symbols.len(), 2);
        assert_eq!((symbols[0].address, symbols[0].size), (0x7f00, 0x1a0));
        assert_eq!(
            (symbols[1].address, symbols[1].name.as_str()),
            (0x7f00, "unprefixed")
        );
        assert_eq!(
            symbols[0].name,
            "<&mut serde_json::de::Deserializer<R> as Deserializer>::deserialize_any"
        );
    }

    #[test]
    fn only_anonymous_executable_mappings_are_code_regions() {
        let maps = "\
55d0a000-55d0b000 r-xp 00001000 08:01 42   /usr/bin/policy-server
7f326b720000-7f326b87e000 r-xp 00000000 00:00 0 
7f326b87e000-7f326b880000 rw-p 00000000 00:00 0 
7f3276261000-7f3276263000 r-xp 00000000 00:00 0   [vdso]
7f3275e62000-7f3275eb2000 r-xp 00000000 00:00 0
";
        let regions = anonymous_code(maps);
        let ranges: Vec<(u64, u64)> = regions.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(
            ranges,
            [
                (0x7f32_6b72_0000, 0x7f32_6b87_e000),
                (0x7f32_75e6_2000, 0x7f32_75eb_2000)
            ]
        );
    }
}
