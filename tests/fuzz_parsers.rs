//! Property tests (fuzzing) of the two parsers that read names and headers written by others:
//! no input makes them panic, and valid inputs round-trip.
//! Run longer with e.g. `PROPTEST_CASES=1000000 cargo test --release --test fuzz_parsers`.

use proptest::prelude::*;
use tessera_mosaic::grid::{Cell, LAT_CELLS, LON_CELLS};
use tessera_mosaic::input::npy::{NpyDtype, encode_header, parse_header};

/// Header-like byte strings: magic, version, length and a dict built from plausible pieces.
fn header_like() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("'descr'".to_string()),
        Just("'fortran_order'".to_string()),
        Just("'shape'".to_string()),
        Just("'x'".to_string()),
        Just("\"descr\"".to_string()),
        ".{0,8}".prop_map(|s| s),
    ];
    let value = prop_oneof![
        Just("'|i1'".to_string()),
        Just("'<f4'".to_string()),
        Just("'>f8'".to_string()),
        Just("False".to_string()),
        Just("True".to_string()),
        prop::collection::vec(any::<u64>(), 0..5).prop_map(|v| format!(
            "({})",
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        ".{0,12}".prop_map(|s| s),
    ];
    let items = prop::collection::vec((key, value), 0..5);
    (1u8..4, any::<u8>(), items, any::<bool>(), 0usize..4).prop_map(
        |(major, minor, items, brace, cut)| {
            let mut dict = String::from(if brace { "{" } else { "" });
            for (k, v) in items {
                dict.push_str(&format!("{k}: {v}, "));
            }
            dict.push('}');
            let mut out = b"\x93NUMPY".to_vec();
            out.extend_from_slice(&[major, minor]);
            if major == 1 {
                out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            } else {
                out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(dict.as_bytes());
            out.truncate(out.len().saturating_sub(cut));
            out
        },
    )
}

proptest! {
    #[test]
    fn npy_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_header(&bytes);
    }

    #[test]
    fn npy_parser_never_panics_on_header_like_input(bytes in header_like()) {
        if let Ok(h) = parse_header(&bytes) {
            prop_assert!(h.data_offset <= bytes.len());
        }
    }

    #[test]
    fn npy_headers_round_trip(shape in prop::collection::vec(0usize..100_000, 1..4), float in any::<bool>()) {
        let dtype = if float { NpyDtype::Float32 } else { NpyDtype::Int8 };
        let h = parse_header(&encode_header(dtype, &shape)).unwrap();
        prop_assert_eq!(h.shape, shape);
        prop_assert_eq!(h.dtype, dtype);
    }

    #[test]
    fn name_parser_never_panics(s in "\\PC{0,40}") {
        let _ = Cell::parse_name(&s);
    }

    #[test]
    fn name_parser_never_panics_on_name_like_input(a in "-?[0-9]{0,5}(\\.[0-9]{0,4})?", b in "-?[0-9]{0,5}(\\.[0-9]{0,4})?") {
        let name = format!("grid_{a}_{b}");
        if let Ok(cell) = Cell::parse_name(&name) {
            // Only canonical names are accepted, so parsing then formatting gives the input back.
            prop_assert_eq!(cell.name(), name);
        }
    }

    #[test]
    fn names_round_trip(i in 0..LON_CELLS, j in 0..LAT_CELLS) {
        let cell = Cell::new(i, j).unwrap();
        prop_assert_eq!(Cell::parse_name(&cell.name()).unwrap(), cell);
    }
}
