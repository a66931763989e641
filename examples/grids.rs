use tessera_mosaic::bands::BandsConfig;
use tessera_mosaic::grid::BandGrid;
fn main() {
    let c = BandsConfig::default();
    for b in &c.bands {
        match BandGrid::for_band(b, &c) {
            Ok(g) => println!(
                "{:10} C={:5} chunk_cols={:4} stretch={:.3} px_eq={:?} px_pole={:?}",
                g.name,
                g.cols_per_cell,
                g.chunk_cols,
                g.stretch(),
                g.pixel_size_m(if g.lat_min() >= 0.0 {
                    g.lat_min()
                } else {
                    g.lat_max()
                }),
                g.pixel_size_m(if g.lat_min() >= 0.0 {
                    g.lat_max()
                } else {
                    g.lat_min()
                })
            ),
            Err(e) => println!("{}: {e}", b.name),
        }
    }
}
