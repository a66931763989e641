//! One PROJ projection per UTM zone and thread: creating one (a PROJ context and its database)
//! costs more than placing a whole cell with it, and PROJ objects cannot cross threads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::grid::{GeometryError, UtmProjection, UtmZone};

thread_local! {
    static PROJECTIONS: RefCell<HashMap<UtmZone, Rc<UtmProjection>>> = RefCell::default();
}

/// This thread's projection for a zone, created on first use.
pub fn projection(zone: UtmZone) -> Result<Rc<UtmProjection>, GeometryError> {
    if let Some(p) = PROJECTIONS.with_borrow(|m| m.get(&zone).cloned()) {
        return Ok(p);
    }
    let p = Rc::new(UtmProjection::new(zone)?);
    PROJECTIONS.with_borrow_mut(|m| m.insert(zone, p.clone()));
    Ok(p)
}
