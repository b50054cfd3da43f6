//! What the benches share: a deterministic xorshift, so every run measures the same city.

use rallypoint::protocol::LatLng;

/// A deterministic xorshift: the same drivers, orders and queries on every run.
pub struct Rng(pub u64);

impl Rng {
    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A point of the box whose south-west corner is (`lat`, `lng`), `dlat` by `dlng` degrees.
    pub fn in_box(&mut self, lat: f64, lng: f64, dlat: f64, dlng: f64) -> LatLng {
        LatLng {
            lat: lat + self.unit() * dlat,
            lng: lng + self.unit() * dlng,
        }
    }
}
