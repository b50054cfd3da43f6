//! The density grid (SPEC 8): the world cut into cells of `crowd.cell_m` metres, each live
//! device counted once in the cell of its latest ping. Rows are `cell_m` of latitude; a row's
//! cells are `cell_m` of longitude at the row's middle latitude, so a cell is about square
//! anywhere. A cell is reported by its centre.

use crate::protocol::crowd::Cell;
use std::collections::HashMap;

/// Metres per degree of latitude (and of longitude at the equator).
const M_PER_DEG: f64 = 111_320.0;

/// The grid of one cell size.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    dlat: f64,
    cell_m: f64,
}

impl Grid {
    pub fn new(cell_m: f64) -> Grid {
        Grid {
            dlat: cell_m / M_PER_DEG,
            cell_m,
        }
    }

    /// The degrees of longitude of a cell in row `row`.
    fn dlng(&self, row: i64) -> f64 {
        let mid = ((row as f64 + 0.5) * self.dlat).clamp(-89.9, 89.9);
        self.cell_m / (M_PER_DEG * mid.to_radians().cos())
    }

    /// The cell of a position: (row, column).
    pub fn cell_of(&self, lat: f64, lng: f64) -> (i64, i64) {
        let row = (lat / self.dlat).floor() as i64;
        let col = (lng / self.dlng(row)).floor() as i64;
        (row, col)
    }

    /// The centre of a cell.
    pub fn centre(&self, (row, col): (i64, i64)) -> (f64, f64) {
        let lat = (row as f64 + 0.5) * self.dlat;
        let lng = (col as f64 + 0.5) * self.dlng(row);
        (lat, lng)
    }

    /// Every non-empty cell of `positions` with its count, south to north then west to east:
    /// the counts add up to the positions.
    pub fn density(&self, positions: impl Iterator<Item = (f64, f64)>) -> Vec<Cell> {
        let mut cells: HashMap<(i64, i64), u32> = HashMap::new();
        for (lat, lng) in positions {
            *cells.entry(self.cell_of(lat, lng)).or_default() += 1;
        }
        let mut keys: Vec<_> = cells.into_iter().collect();
        keys.sort_unstable_by_key(|(k, _)| *k);
        keys.into_iter()
            .map(|(k, count)| {
                let (lat, lng) = self.centre(k);
                Cell {
                    lat: round6(lat),
                    lng: round6(lng),
                    count,
                }
            })
            .collect()
    }
}

/// Degrees to the micro-degree (about 10 cm): shorter frames, no false precision.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_in_one_cell_count_together_and_the_counts_add_up() {
        let g = Grid::new(25.0);
        // Two devices 5 m apart, one 200 m north.
        let at = [
            (48.85660, 2.35220),
            (48.85664, 2.35222),
            (48.85840, 2.35220),
        ];
        let d = g.density(at.iter().copied());
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d.iter().map(|c| c.count).sum::<u32>(), 3);
        assert_eq!(d[0].count, 2);
        // A cell's centre lies within half a cell of its devices.
        assert!((d[0].lat - 48.85662).abs() < 25.0 / 111_320.0);
    }

    #[test]
    fn a_cell_is_about_cell_m_wide_at_any_latitude() {
        let g = Grid::new(25.0);
        for lat in [0.0, 48.85, -60.0] {
            let (row, col) = g.cell_of(lat, 10.0);
            let (_, a) = g.centre((row, col));
            let (_, b) = g.centre((row, col + 1));
            let metres = (b - a) * 111_320.0 * lat.to_radians().cos();
            assert!((metres - 25.0).abs() < 0.5, "{lat}: {metres}");
        }
    }

    #[test]
    fn no_device_no_cell() {
        assert!(Grid::new(25.0).density(std::iter::empty()).is_empty());
    }
}
