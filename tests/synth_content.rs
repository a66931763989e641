//! The synthetic content: neighbouring pixels never carry the same vector (so a misplaced
//! pixel is caught), and the landscape content compresses like real TESSERA embeddings.
//! `cargo test --release --test synth_content -- --nocapture` prints the ratios.

use tessera_mosaic::grid::{
    CHANNELS, Cell, CompressionConfig, TileGeometry, UtmProjection, UtmZone,
};
use tessera_mosaic::input::synth::{Content, Landscape, SynthTile, synth_tile};
use tessera_mosaic::zarr::encoded_size;

fn tile(name: &str, landscape: impl Fn(Cell) -> Landscape) -> SynthTile {
    let cell = Cell::parse_name(name).unwrap();
    let proj = UtmProjection::new(UtmZone::for_cell(cell)).unwrap();
    let geometry = TileGeometry::with_projection(cell, &proj).unwrap();
    synth_tile(&landscape(cell), &geometry, &proj, 2024).unwrap()
}

/// Adjacent pixels (4 neighbours and diagonals) whose 128-byte vectors are identical.
fn identical_neighbours(t: &SynthTile) -> usize {
    let (h, w) = (t.geometry.height, t.geometry.width);
    let v = |r: usize, c: usize| &t.embeddings[(r * w + c) * CHANNELS..][..CHANNELS];
    let mut same = 0;
    for r in 0..h {
        for c in 0..w {
            for (dr, dc) in [(0, 1), (1, 0), (1, 1), (1, usize::MAX)] {
                let (r2, c2) = (r + dr, c.wrapping_add(dc));
                if r2 < h && c2 < w && v(r, c) == v(r2, c2) {
                    same += 1;
                }
            }
        }
    }
    same
}

#[test]
fn neighbouring_pixels_never_carry_the_same_vector() {
    // Land and water (land fraction 0.5 over a few cells around this one).
    let name = "grid_10.05_70.05";
    let ls = |c: Cell| Landscape::new(5, 0.5, &[c]);
    let t = tile(name, ls);
    assert!(t.landmask.contains(&0) && t.landmask.contains(&1));
    assert_eq!(identical_neighbours(&t), 0);
    // The per-pixel noise is what keeps them apart: without it, patches repeat vectors.
    let flat = tile(name, |c| ls(c).with_noise(0.0));
    assert!(identical_neighbours(&flat) > 1000);
}

/// Stored / raw bytes of a tile (embeddings and scales) in 32 x 32 pixel chunks, as
/// TESSERA's own Zarr writer stores them.
fn chunked_ratio(t: &SynthTile, compression: &CompressionConfig) -> f64 {
    let (h, w) = (t.geometry.height, t.geometry.width);
    let (mut raw, mut stored) = (0, 0);
    for r0 in (0..h).step_by(32) {
        for c0 in (0..w).step_by(32) {
            let (mut e, mut s) = (Vec::new(), Vec::new());
            for r in r0..(r0 + 32).min(h) {
                let row = r * w;
                let cols = c0..(c0 + 32).min(w);
                e.extend_from_slice(bytemuck::cast_slice::<i8, u8>(
                    &t.embeddings[(row + cols.start) * CHANNELS..(row + cols.end) * CHANNELS],
                ));
                s.extend_from_slice(bytemuck::cast_slice::<f32, u8>(
                    &t.scales[row + cols.start..row + cols.end],
                ));
            }
            raw += e.len() + s.len();
            stored += encoded_size(&e, "int8", compression).unwrap();
            stored += encoded_size(&s, "float32", compression).unwrap();
        }
    }
    stored as f64 / raw as f64
}

/// The calibration: blosc zstd 3 + bitshuffle on 32 x 32 chunks keeps about 0.45 of the
/// bytes of real TESSERA tiles (59 of 132 bytes per pixel); the landscape content must stay
/// within 0.35-0.55 (printed with `--nocapture`), the noise content far above.
#[test]
fn landscape_compresses_like_tessera() {
    let blosc = CompressionConfig::Blosc {
        cname: "zstd".into(),
        clevel: 3,
        shuffle: "bitshuffle".into(),
    };
    for name in ["grid_10.05_70.05", "grid_0.85_49.95"] {
        let t = tile(name, |c| Landscape::new(3, 1.0, &[c]));
        let ratio = chunked_ratio(&t, &blosc);
        let zstd1 = chunked_ratio(&t, &CompressionConfig::Zstd { level: 1 });
        println!("{name}: blosc zstd 3 bitshuffle {ratio:.3}, zstd 1 {zstd1:.3}");
        assert!((0.35..=0.55).contains(&ratio), "{name}: {ratio}");
    }
    let noise = tile("grid_10.05_70.05", |c| {
        Landscape::new(3, 1.0, &[c]).with_content(Content::Noise)
    });
    assert!(chunked_ratio(&noise, &blosc) > 0.8);
}
