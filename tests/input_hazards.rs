//! Nothing in the input can hang the tool: a FIFO or a device where a tile file should be is
//! refused with a message naming it, and the scan and the build go on.

mod common;

use common::{Mosaic, build, s, scratch_dir, synth};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run `mosaic` with a deadline: a hang is a test failure, not a stuck CI job.
fn mosaic_within(mosaic: &Mosaic, limit: Duration) -> std::process::Output {
    let mut child = mosaic
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("{mosaic:?} still running after {limit:?}: it hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_fifo_in_place_of_a_tile_file_is_refused_not_waited_on() {
    let d = scratch_dir("fifo");
    let root = d.join("in");
    synth(&root, "grid_-99.95_80.05,grid_-99.85_80.05", "2024").ok();
    // The second tile's scales become a FIFO nobody writes to.
    let fifo = root.join("2024/grid_-99.85_80.05/grid_-99.85_80.05_scales.npy");
    std::fs::remove_file(&fifo).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let limit = Duration::from_secs(60);
    let plan = mosaic_within(&Mosaic::new(["plan", "--input"]).arg(&root), limit);
    assert!(plan.status.success());
    let err = String::from_utf8_lossy(&plan.stderr);
    assert!(
        err.contains(s(&fifo)) && err.contains("not a regular file"),
        "{err}"
    );
    let store = d.join("store.zarr");
    let out = mosaic_within(&build(&root, &store, "80-90"), limit);
    assert_eq!(out.status.code(), Some(1), "an input problem makes exit 1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 tiles written"));
}

#[test]
fn a_device_in_place_of_a_tile_file_is_refused_not_read() {
    use std::os::unix::fs::FileTypeExt;
    let d = scratch_dir("device");
    let root = d.join("in");
    synth(&root, "grid_-99.95_80.05,grid_-99.85_80.05", "2024").ok();
    // The manifest, written while the tree is whole: a build from it opens no header before
    // it reads the tile, so the read itself must refuse the device.
    Mosaic::new(["manifest", "--input"]).arg(&root).ok();
    // The first tile's embeddings become a link to /dev/zero, a character device whose read
    // never ends (a link needs no privilege, unlike mknod; the tool follows links).
    let device = root.join("2024/grid_-99.95_80.05/grid_-99.95_80.05.npy");
    std::fs::remove_file(&device).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &device).unwrap();
    assert!(
        std::fs::metadata(&device)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    let limit = Duration::from_secs(60);
    let refused = |out: &std::process::Output, what: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| l.contains(s(&device)));
        assert!(
            line.is_some_and(|l| l.contains("not a regular file")),
            "{what}: the device is not refused by name:\n{err}"
        );
    };
    // A build writes the other tile and exits 1 (an input problem), the device named.
    let build_refuses = |store: &str, what: &str| {
        let out = mosaic_within(&build(&root, d.join(store), "80-90"), limit);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: an input problem makes exit 1"
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 tiles written"));
        refused(&out, what);
    };
    build_refuses("a.zarr", "build from the manifest");

    std::fs::remove_file(root.join("manifest.parquet")).unwrap();
    let plan = mosaic_within(&Mosaic::new(["plan", "--input"]).arg(&root), limit);
    assert!(plan.status.success());
    refused(&plan, "plan (scan)");
    build_refuses("b.zarr", "build from a scan");
}
